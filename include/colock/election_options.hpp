#ifndef COLOCK_ELECTION_OPTIONS_HPP
#define COLOCK_ELECTION_OPTIONS_HPP

#include <colock/consul/session_id.hpp>
#include <colock/lock_options.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace colock {

/// Who leads an election, as the election key shows it.
struct leader_info {
    std::string value;          ///< what the leader campaigned with or last proclaimed
    consul::session_id session; ///< the leader's session
    /// Consul's LockIndex of the key: together with `session` it names one term (a leader that
    /// resigns and wins again with the same session starts a term with a larger lock_index).
    std::uint64_t lock_index = 0;

    friend bool operator==(const leader_info&, const leader_info&) = default;
};

/// Settings of a colock::election. (Not an aggregate on purpose: see consul/query.hpp.)
struct election_options {
    election_options() {}

    /// The lock that leadership is: its session choice (shared, `own_session` or a given one),
    /// request options (token, datacenter, ...), retries and poll interval. `value` and `reentrant`
    /// are ignored: campaign() sets the value, and a candidate leads at most once at a time.
    lock_options lock;

    /// `wait` of observe()'s blocking queries; zero = the client's default_wait.
    std::chrono::milliseconds observe_wait{0};
};

} // namespace colock

#endif
