#ifndef COLOCK_SRC_SANSIO_TXN_ROLLBACK_HPP
#define COLOCK_SRC_SANSIO_TXN_ROLLBACK_HPP

// Reading why Consul rolled a /v1/txn back: one classifier for every recipe, from the texts Consul's
// state store and ACL layer write into the failing operation's "What".

#include <string>

namespace colock::detail {

// The failing operation's text without what is quoted in it. Consul's texts quote the key (`failed
// to lock key "k" due to lock delay`): a key named "lock delay" or "index is stale" must never be
// taken for the reason.
std::string rollback_reason(const std::string& what);

enum class rollback_cause {
    lock_delay,        // `lock`: the key is under its lock-delay (refused before anything was applied)
    already_held,      // `lock`: another session holds the key
    invalid_session,   // `lock`: the session does not exist (any other complaint about a session but a check)
    stale_index,       // `cas` / `delete-cas`: the key's ModifyIndex is not the one given
    guard_failed,      // `check-index`, `check-not-exists`, `check-session`: the key is not as assumed
    missing_key,       // `get`: the key does not exist
    permission_denied, // an ACL refused the operation
    other,             // a text this client does not know
};

rollback_cause classify_rollback(const std::string& what);

} // namespace colock::detail

#endif
