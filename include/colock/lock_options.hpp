#ifndef COLOCK_LOCK_OPTIONS_HPP
#define COLOCK_LOCK_OPTIONS_HPP

#include <colock/consul/query.hpp>
#include <colock/consul/session_options.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace colock {

namespace consul {
class session;
}

/// Flags of Consul's Go `api.Lock` (and `consul lock`): every lock write carries them, so colock,
/// Go clients and `consul lock` recognise each other's locks. A key with other flags is not a lock.
inline constexpr std::uint64_t lock_flags = 0x2ddccbc058a50c18ULL;

/// Settings of a colock::lock. (Not an aggregate on purpose: see consul/query.hpp.)
struct lock_options {
    lock_options() {}

    /// A lock with a session of its own (created at acquire, destroyed after release or loss),
    /// with this TTL and lock-delay, and no health checks: the TTL alone bounds its life.
    static lock_options with_own_session(std::chrono::milliseconds ttl, std::chrono::milliseconds lock_delay)
    {
        lock_options o;
        consul::session_options s;
        s.name = "colock lock";
        s.ttl = ttl;
        s.lock_delay = lock_delay;
        s.node_checks.emplace();
        o.own_session = std::move(s);
        return o;
    }

    /// Stored in the key while held (Consul's Value); written by acquire and by release.
    std::string value;

    /// The session to hold the lock with: one of the same client (local turns are per client). Not
    /// owned; it must outlive the lock. It must have been made with the same datacenter, namespace,
    /// partition and token as `request` (empty fields count as the client's defaults): otherwise
    /// acquire() fails at once with errc::session_mismatch (the client's log names the fields).
    /// Null: the lock uses `own_session` when set, else the client's shared session
    /// (client::shared_session()), which is made with the client's defaults; when `request` names
    /// another datacenter, namespace, partition or token than those, the lock makes a session of
    /// its own instead (as for `own_session`, with client_options::shared_session's settings).
    consul::session* session = nullptr;

    /// When set (and `session` is null), the lock creates a session of its own with these settings,
    /// and with `request`'s datacenter, namespace, partition and token, when it acquires and destroys
    /// it after release or loss.
    std::optional<consul::session_options> own_session;

    /// With `reentrant`, acquire() on a held lock counts one more hold and release() undoes one;
    /// without it, acquire() on a held lock fails with errc::already_held.
    bool reentrant = false;

    /// Backoff after failed requests while acquiring (capped exponential, with jitter).
    std::chrono::milliseconds retry_initial{std::chrono::milliseconds(50)};
    std::chrono::milliseconds retry_max{std::chrono::seconds(2)};
    /// acquire() fails with the last error after this many failed requests in a row (0: never).
    unsigned max_consecutive_errors = 8;

    /// While the key is under lock-delay (free, yet Consul refuses it), retry after a jittered,
    /// growing delay of at most this much, so the lock is taken soon after the delay ends.
    std::chrono::milliseconds lock_delay_retry_max{std::chrono::milliseconds(250)};

    /// How often a key is re-read when the client's watch budget leaves it without a blocking
    /// query: while waiting to acquire (while held it is re-checked at least every half session TTL).
    std::chrono::milliseconds poll_interval{std::chrono::seconds(1)};

    /// Token, datacenter, namespace and partition of every request the lock makes, its session's
    /// included (see `session` for which session that is). Lock objects of
    /// one client take turns per (datacenter, namespace, partition, key) as spelled here: spell the
    /// same place the same way (e.g. "" for the agent's own datacenter everywhere).
    consul::request_options request;
};

} // namespace colock

#endif
