#ifndef COLOCK_CONSUL_QUERY_HPP
#define COLOCK_CONSUL_QUERY_HPP

#include <colock/diagnostics.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace colock::consul {

/// Consul's read consistency modes.
enum class consistency_mode {
    default_mode, ///< served by the leader, may be stale for a short window after a leader change
    consistent,   ///< the leader re-confirms leadership first (use it for ownership checks)
    stale,        ///< any server may answer
};

// The option types of operations are classes with a user-provided default constructor, not
// aggregates, on purpose: GCC 12 miscompiles aggregate temporaries that hold strings when they appear
// inside a co_await expression (`co_await c.kv_get(k, query_options{})` frees a bogus pointer).
// Set members by name after construction, or use the named factories.

/// Per-request settings shared by reads and writes. Empty strings mean "the client's default".
struct request_options {
    request_options() noexcept {}

    std::string datacenter; ///< `?dc=`
    std::string ns;         ///< `?ns=` (Consul Enterprise)
    std::string partition;  ///< `?partition=` (Consul Enterprise)
    std::string token;      ///< ACL token, sent as the X-Consul-Token header; never logged
    /// Deadline of one attempt; zero = the client's request_timeout (blocking reads: wait + wait/16 + slack).
    std::chrono::milliseconds timeout{0};
    /// When set, receives the details of a failure (HTTP status and Consul's text). Must outlive the operation.
    diagnostics* diag = nullptr;
};

/// Options of a read.
struct query_options : request_options {
    query_options() noexcept {}
    /// A blocking read: returns once the index exceeds `after_index`, or after `max_wait`.
    static query_options blocking(std::uint64_t after_index, std::chrono::milliseconds max_wait = {})
    {
        query_options q;
        q.index = after_index;
        q.wait = max_wait;
        return q;
    }
    /// A read the leader re-confirms (for ownership checks).
    static query_options consistent_read()
    {
        query_options q;
        q.consistency = consistency_mode::consistent;
        return q;
    }

    /// Non-zero: a blocking query that returns once the result's index exceeds this one, or after
    /// `wait`. Use the index of the previous reply (consul::index_tracker applies Consul's rules).
    std::uint64_t index = 0;
    /// Longest time the server may hold a blocking query; zero = the client's `default_wait`.
    /// Consul adds up to wait/16 of jitter; the request deadline allows for it.
    std::chrono::milliseconds wait{0};
    consistency_mode consistency = consistency_mode::default_mode;
};

/// Options of a write. A write is never re-sent once any byte of it may have reached the server
/// (its outcome is then errc::indeterminate_write), except renewals and destroys of sessions,
/// which are harmless to repeat.
struct write_options : request_options {
    write_options() noexcept {}
};

/// What Consul says about a read, from its X-Consul-* headers.
struct query_meta {
    std::uint64_t index = 0;        ///< X-Consul-Index (>= 1 on every successful read)
    bool known_leader = false;      ///< X-Consul-KnownLeader
    std::chrono::milliseconds last_contact{0}; ///< X-Consul-LastContact
};

} // namespace colock::consul

#endif
