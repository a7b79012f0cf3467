#ifndef COLOCK_SEMAPHORE_OPTIONS_HPP
#define COLOCK_SEMAPHORE_OPTIONS_HPP

#include <colock/consul/query.hpp>
#include <colock/consul/session_options.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace colock {

namespace consul {
class session;
}

/// Flags of Consul's Go `api.Semaphore` (and `consul lock -n`): the `<prefix>/.lock` coordination
/// key and every contender key carry them, so colock and Go contenders share one semaphore.
inline constexpr std::uint64_t semaphore_flags = 0xe0f69a2baa414de0ULL;

/// Settings of a colock::semaphore. (Not an aggregate on purpose: see consul/query.hpp.)
struct semaphore_options {
    semaphore_options()
    {
        own_session.name = "colock semaphore";
        own_session.ttl = std::chrono::seconds(15);
        own_session.behavior = consul::session_behavior::delete_keys;
        own_session.lock_delay = std::chrono::milliseconds(0);
        own_session.node_checks.emplace();
    }

    /// Stored in this contender's key `<prefix>/<session id>`.
    std::string value;

    /// The session to contend with (not owned; it must outlive the semaphore). One session holds at
    /// most one slot of a semaphore: give each semaphore object on a prefix its own session. Prefer
    /// `delete_keys` behaviour, so the contender key disappears with the session. It must have been
    /// made with the same datacenter, namespace, partition and token as `request` (empty fields
    /// count as the client's defaults): otherwise acquire() fails at once with
    /// errc::session_mismatch. Null: the semaphore creates `own_session` (with `request`'s
    /// datacenter, namespace, partition and token) at its first acquire and destroys it with itself
    /// or after a loss.
    consul::session* session = nullptr;

    /// The semaphore's own session (used when `session` is null): by default TTL 15 s, behaviour
    /// delete (as Go's), lock-delay 0 (contender keys are never shared) and no health checks (the
    /// TTL alone bounds its life).
    consul::session_options own_session;

    /// Backoff after failed requests while acquiring (capped exponential, with jitter).
    std::chrono::milliseconds retry_initial{std::chrono::milliseconds(50)};
    std::chrono::milliseconds retry_max{std::chrono::seconds(2)};
    /// acquire() fails with the last error after this many failed requests in a row (0: never).
    unsigned max_consecutive_errors = 8;

    /// How often the prefix is re-read when the client's watch budget leaves it without a blocking
    /// query: while waiting for a slot (while held it is re-checked at least every half session TTL).
    std::chrono::milliseconds poll_interval{std::chrono::seconds(1)};

    /// Token, datacenter, namespace and partition of every request the semaphore makes, its own
    /// session's included.
    consul::request_options request;
};

} // namespace colock

#endif
