// Managed sessions against the real agent: renewal keeps them alive, operator destroy and silent
// network loss are both reported, and nothing is left behind.

#include <colock/consul/client.hpp>
#include <colock/consul/session.hpp>

#include "async_test.hpp"
#include "consul_agent.hpp"
#include "test_options.hpp"
#include "tcp_proxy.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

namespace asio = boost::asio;
using namespace colock;
using namespace colock::consul;
using colock::test::consul_agent;
using colock::test::consul_agent_fixture;
using colock::test::real_agent_options;
using colock::test::run_async;
using colock::test::sleep_for;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

BOOST_TEST_GLOBAL_FIXTURE(consul_agent_fixture);

namespace {

session_options one_second_session(std::string name)
{
    session_options s;
    s.name = std::move(name);
    s.ttl = 1s;
    s.lock_delay = 0ms;
    s.node_checks = std::vector<std::string>{};
    return s;
}

bool exists_in_consul(const session_id& id)
{
    auto reply = consul_agent::instance().request("GET", "/v1/session/info/" + id.str());
    return reply.status == 200 && reply.body.find(id.str()) != std::string::npos;
}

} // namespace

BOOST_AUTO_TEST_SUITE(test_session)

BOOST_AUTO_TEST_CASE(renewal_keeps_a_one_second_session_alive_past_twice_its_ttl)
{
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        using namespace asio::experimental::awaitable_operators;
        client c(ioc.get_executor(), real_agent_options());
        session s(c, one_second_session("colock-test-renewal"));
        auto id = co_await s.start();
        BOOST_TEST(s.is_live());
        BOOST_TEST((s.deadline() > steady::now()));
        // Race loss against 3.5 s (more than 2 x TTL): the session must survive.
        auto result = co_await (s.lost(asio::use_awaitable) || sleep_for(3500ms));
        BOOST_TEST(result.index() == 1u);
        BOOST_TEST(s.is_live());
        BOOST_TEST(exists_in_consul(id));
        BOOST_TEST(s.generation() == 1u);
        co_await s.close();
        BOOST_TEST(!s.is_live());
        BOOST_TEST(!exists_in_consul(id));
    });
}

BOOST_AUTO_TEST_CASE(operator_destroy_is_reported_as_invalidated_within_half_a_ttl)
{
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        client c(ioc.get_executor(), real_agent_options());
        session s(c, one_second_session("colock-test-operator-destroy"));
        auto id = co_await s.start();
        auto reply = consul_agent::instance().request("PUT", "/v1/session/destroy/" + id.str());
        BOOST_TEST(reply.status == 200u);
        const auto destroyed_at = steady::now();
        auto [ec] = co_await s.lost(tuple_awaitable);
        const auto took = steady::now() - destroyed_at;
        BOOST_TEST(ec == errc::session_invalidated);
        BOOST_TEST((took < 1500ms)); // the next renewal (every TTL/2) gets the 404
        BOOST_TEST(!s.is_live());
        // A new start() creates a new session.
        auto id2 = co_await s.start();
        BOOST_TEST(id2 != id);
        BOOST_TEST(s.generation() == 2u);
        co_await s.close();
    });
}

BOOST_AUTO_TEST_CASE(silent_network_loss_is_reported_before_the_ttl_and_consul_expires_the_session)
{
    colock::test::tcp_proxy proxy(consul_agent::instance().host(), consul_agent::instance().http_port());
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        client c(ioc.get_executor(), real_agent_options(proxy.port()));
        session s(c, one_second_session("colock-test-blackhole"));
        auto id = co_await s.start();
        co_await sleep_for(600ms); // at least one renewal went through the proxy
        const auto deadline = s.deadline();
        proxy.set_mode(colock::test::tcp_proxy::mode::blackhole); // packets vanish: no FIN, no RST
        const auto blackholed_at = steady::now();
        auto [ec] = co_await s.lost(tuple_awaitable);
        const auto noticed = steady::now();
        BOOST_TEST(ec == errc::session_expired);
        // Reported by the local deadline: before a full TTL has passed since the last good renewal's
        // send time (deadline = that send time + TTL - margin), whatever the requests in flight do.
        BOOST_TEST((noticed >= deadline));
        BOOST_TEST((noticed < deadline + 200ms));
        BOOST_TEST((noticed - blackholed_at < 1s));
        // Consul, hearing nothing, invalidates it itself within 2 x TTL (polled with a deadline).
        bool gone = false;
        const auto poll_until = steady::now() + 5s;
        while (!gone && steady::now() < poll_until) {
            gone = !exists_in_consul(id);
            if (!gone)
                co_await sleep_for(50ms);
        }
        BOOST_TEST(gone);
        BOOST_TEST((steady::now() - noticed < 3s));
    });
}

BOOST_AUTO_TEST_CASE(concurrent_starts_share_one_creation)
{
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        using namespace asio::experimental::awaitable_operators;
        client c(ioc.get_executor(), real_agent_options());
        session s(c, one_second_session("colock-test-shared-create"));
        auto [a, b] = co_await (s.start(asio::use_awaitable) && s.start(asio::use_awaitable));
        BOOST_TEST(a == b);
        BOOST_TEST(s.generation() == 1u);
        BOOST_TEST(consul_agent::instance().sessions_named("colock-test-shared-create").size() == 1u);
        co_await s.close();
        BOOST_TEST(consul_agent::instance().sessions_named("colock-test-shared-create").empty());
    });
}

BOOST_AUTO_TEST_CASE(client_shared_session_is_one_session_destroyed_with_the_client)
{
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        client_options o = real_agent_options();
        o.shared_session = one_second_session("colock-test-client-shared");
        {
            client c(ioc.get_executor(), o);
            auto id1 = co_await c.shared_session().start();
            auto id2 = co_await c.shared_session().start();
            BOOST_TEST(id1 == id2);
            BOOST_TEST(&c.shared_session() == &c.shared_session());
        }
        // The destroy runs in the background after the client is gone; poll for it with a deadline.
        bool gone = false;
        const auto poll_until = steady::now() + 5s;
        while (!gone && steady::now() < poll_until) {
            gone = consul_agent::instance().sessions_named("colock-test-client-shared").empty();
            if (!gone)
                co_await sleep_for(20ms);
        }
        BOOST_TEST(gone);
    });
}

BOOST_AUTO_TEST_CASE(lost_without_a_live_session_completes_at_once_with_not_held)
{
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        client c(ioc.get_executor(), real_agent_options());
        session s(c, one_second_session("colock-test-not-started"));
        auto [ec] = co_await s.lost(tuple_awaitable);
        BOOST_TEST(ec == errc::not_held);
    });
}

BOOST_AUTO_TEST_SUITE_END()
