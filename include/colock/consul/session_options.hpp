#ifndef COLOCK_CONSUL_SESSION_OPTIONS_HPP
#define COLOCK_CONSUL_SESSION_OPTIONS_HPP

#include <colock/consul/query.hpp>
#include <colock/consul/session_id.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace colock::consul {

/// What happens to the keys a session holds when it is invalidated.
enum class session_behavior {
    release,    ///< the keys stay, unlocked (Consul's default)
    delete_keys ///< the keys are deleted
};

/// Settings of a new Consul session. (Not an aggregate on purpose: see query.hpp.)
struct session_options {
    session_options() {}

    std::string name = "colock";
    /// Time to live; the session must be renewed within it (Consul invalidates it after up to 2 x TTL).
    /// Zero: no TTL (the session lives until destroyed or its checks fail).
    std::chrono::milliseconds ttl{std::chrono::seconds(15)};
    /// Lock-delay after invalidation: empty = Consul's default (15 s); zero = disabled; at most 60 s.
    std::optional<std::chrono::milliseconds> lock_delay;
    session_behavior behavior = session_behavior::release;
    /// Node health checks bound to the session: empty optional = the agent's default (serfHealth);
    /// an empty list = no node checks (liveness from the TTL only).
    std::optional<std::vector<std::string>> node_checks;
    std::vector<std::string> service_checks; ///< service check IDs bound to the session
    std::string node;                        ///< empty: the agent's own node
};

/// A session as Consul describes it (/v1/session/info, renew).
struct session_entry {
    session_id id;
    std::string name;
    std::string node;
    std::chrono::nanoseconds lock_delay{0};
    session_behavior behavior = session_behavior::release;
    std::chrono::milliseconds ttl{0};        ///< zero when the session has no TTL
    std::vector<std::string> node_checks;
    std::vector<std::string> service_checks;
    std::uint64_t create_index = 0;
    std::uint64_t modify_index = 0;
};

/// Result of /v1/session/info: `entry` is empty when the session does not exist.
struct session_info_result {
    std::optional<session_entry> entry;
    query_meta meta;
};

/// Result of /v1/session/list.
struct session_list_result {
    std::vector<session_entry> sessions;
    query_meta meta;
};

} // namespace colock::consul

#endif
