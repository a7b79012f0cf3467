#ifndef COLOCK_TEST_COMMON_TEST_OPTIONS_HPP
#define COLOCK_TEST_COMMON_TEST_OPTIONS_HPP

// Client settings shared by the test tiers.

#include <colock/consul/config.hpp>

#include "consul_agent.hpp"

#include <chrono>
#include <cstdint>

namespace colock::test {

/// For the scripted fake agent: short deadlines and backoff, so every fault case ends in
/// well under a second per attempt.
inline consul::client_options fake_agent_options(std::uint16_t port, unsigned max_attempts = 3)
{
    using namespace std::chrono_literals;
    consul::client_options o;
    o.host = "127.0.0.1";
    o.port = port;
    o.request_timeout = 500ms;
    o.connect_timeout = 500ms;
    o.backoff_initial = 10ms;
    o.backoff_max = 40ms;
    o.max_attempts = max_attempts;
    o.blocking_slack = 500ms;
    o.default_wait = 1s;
    return o;
}

/// For the harness's real agent (or `port`, e.g. a proxy in front of it).
inline consul::client_options real_agent_options(std::uint16_t port = 0)
{
    using namespace std::chrono_literals;
    consul::client_options o;
    o.host = consul_agent::instance().host();
    o.port = port ? port : consul_agent::instance().http_port();
    o.request_timeout = 2s;
    return o;
}

} // namespace colock::test

#endif
