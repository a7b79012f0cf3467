#include "sansio/txn_rollback.hpp"

#include <algorithm>
#include <cctype>

namespace colock::detail {

std::string rollback_reason(const std::string& what)
{
    std::string out;
    bool quoted = false;
    for (std::size_t i = 0; i < what.size(); ++i) {
        const char c = what[i];
        if (quoted && c == '\\' && i + 1 < what.size()) {
            ++i;
            continue;
        }
        if (c == '"')
            quoted = !quoted;
        else if (!quoted)
            out += c;
    }
    return out;
}

rollback_cause classify_rollback(const std::string& what)
{
    std::string why = rollback_reason(what);
    std::transform(why.begin(), why.end(), why.begin(), [](unsigned char c) { return std::tolower(c); });
    const auto has = [&](const char* text) { return why.find(text) != std::string::npos; };
    // Consul's texts (agent/consul/state/txn.go, kvs.go; agent/consul/txn_endpoint.go; acl):
    if (has("permission denied"))
        return rollback_cause::permission_denied;
    if (has("lock delay")) // failed to lock key "k" due to lock delay
        return rollback_cause::lock_delay;
    if (has("already held")) // failed to lock key "k", lock is already held
        return rollback_cause::already_held;
    // The guards (checked before "doesn't exist": a guard on a missing key says "failed to check
    // index, key "k" doesn't exist").
    if (has("failed to check") || has("session check") || has("index check") || has(" exists"))
        return rollback_cause::guard_failed; // check-index, check-session, check-not-exists ("key "k" exists")
    if (has("doesn't exist")) // get: key "k" doesn't exist
        return rollback_cause::missing_key;
    if (has("index is stale")) // cas, delete-cas: failed to set key "k", index is stale
        return rollback_cause::stale_index;
    if (has("session")) // invalid session "…", failed session lookup
        return rollback_cause::invalid_session;
    return rollback_cause::other;
}

} // namespace colock::detail
