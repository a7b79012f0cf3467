#include "recipes/election_state.hpp"

#include <colock/lock_options.hpp>

namespace colock::detail {

leader_reading leader_of(const std::optional<consul::kv_entry>& key)
{
    leader_reading r;
    if (!key)
        return r;
    if (key->flags != lock_flags) {
        r.ec = make_error_code(errc::conflict);
        return r;
    }
    if (!key->session || key->session->empty())
        return r;
    leader_info info;
    info.value = key->value;
    info.session = *key->session;
    info.lock_index = key->lock_index;
    r.leader = std::move(info);
    return r;
}

std::vector<consul::txn_op> proclaim_ops(const std::string& key, const consul::session_id& holder,
                                         const std::string& value)
{
    // The check makes the guard explicit: without it, a `lock` on a free key would start a new term.
    return {consul::txn_op::check_session(key, holder), consul::txn_op::lock(key, holder, value, lock_flags)};
}

error_code proclaim_outcome(const consul::txn_result& r, const consul::session_id& holder,
                            std::uint64_t term_lock_index)
{
    if (!r.committed)
        return make_error_code(errc::lock_lost);
    if (r.results.empty())
        return make_error_code(errc::bad_response);
    const auto& after = r.results.back(); // the entry as the `lock` left it
    if (!after.session || *after.session != holder || after.lock_index != term_lock_index)
        return make_error_code(errc::lock_lost);
    return {};
}

} // namespace colock::detail
