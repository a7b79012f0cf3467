// Request options of recipes and their sessions against the real agent (CONSUL.md 1.1, 1.2): a session lives in the
// datacenter (namespace, partition) it was created in, with the token it was created with, so a recipe's session
// must be created, renewed and destroyed with the recipe's request options. A lock or semaphore for a datacenter
// that does not exist fails at once, leaving nothing behind; a recipe whose requests go elsewhere than the client's
// defaults gets a session of its own made with them; a given session that does not match is refused.

#include <colock/consul/client.hpp>
#include <colock/consul/session.hpp>
#include <colock/election.hpp>
#include <colock/lock.hpp>
#include <colock/semaphore.hpp>

#include "async_test.hpp"
#include "consul_agent.hpp"
#include "fault_helpers.hpp"
#include "kv_probe.hpp"
#include "lock_helpers.hpp"
#include "tcp_proxy.hpp"
#include "test_options.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/json/parse.hpp>

#include <algorithm>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace asio = boost::asio;
using namespace colock;
using namespace colock::consul;
using namespace colock::test;
using namespace std::chrono_literals;

BOOST_TEST_GLOBAL_FIXTURE(consul_agent_fixture);

namespace {

consul_agent& agent() { return consul_agent::instance(); }

// The agent's own datacenter, as it names it.
std::string agent_datacenter()
{
    auto r = agent().request("GET", "/v1/agent/self");
    BOOST_TEST_REQUIRE(r.status == 200u, r.body);
    const auto v = boost::json::parse(r.body);
    return std::string(v.at("Config").at("Datacenter").as_string());
}

// Runs `op` (an awaitable of std::tuple<error_code>) against a `limit` timer: returns its error code, or fails the
// test (and returns operation_aborted) when the timer wins.
asio::awaitable<error_code> within(asio::awaitable<std::tuple<error_code>> op, std::chrono::milliseconds limit,
                                   const char* what)
{
    using namespace asio::experimental::awaitable_operators;
    const auto t0 = clock_type::now();
    auto timer = sleep_for(limit);
    auto raced = co_await (std::move(op) || std::move(timer));
    const auto took = ms_since(t0);
    BOOST_TEST_MESSAGE(what << " took " << took << " ms");
    if (raced.index() != 0) {
        BOOST_TEST(false, what << " did not complete within " << limit.count() << " ms");
        co_return make_error_code(asio::error::operation_aborted);
    }
    co_return std::get<0>(std::get<0>(raced));
}

// What a recipe for a datacenter that does not exist must fail with: an error of its own, at once, never a
// (misleading) loss of its session.
void expect_clear_failure(const error_code& ec)
{
    BOOST_TEST(!!ec, "acquire succeeded");
    BOOST_TEST(ec != errc::session_invalidated, ec.message());
    BOOST_TEST(ec != errc::session_expired, ec.message());
    BOOST_TEST(ec != asio::error::operation_aborted, ec.message());
}

} // namespace

BOOST_AUTO_TEST_SUITE(test_request_options)

BOOST_AUTO_TEST_CASE(lock_for_a_datacenter_that_does_not_exist_fails_at_once_and_leaves_nothing_behind)
{
    const auto name = agent().unique_prefix("no_such_dc_lock");
    const auto key = name + "lock";
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        {
            client c(ioc.get_executor(), lock_client(name));
            lock_options opts;
            opts.request.datacenter = "no-such-dc";
            lock l(c, key, opts);
            for (int round = 0; round < 2; ++round) { // a failed acquire keeps nothing (no local turn either)
                BOOST_TEST_CONTEXT("acquire " << round)
                {
                    auto ec = co_await within(l.acquire(tuple_awaitable), 4s, "acquire for dc no-such-dc");
                    expect_clear_failure(ec);
                    BOOST_TEST(!l.is_held());
                    BOOST_TEST(!l.session_id().has_value());
                }
            }
            // Nothing in the agent's own datacenter: no session (the shared one is never needed), no key.
            BOOST_TEST(agent().sessions_named(name).empty(), "a session was created in the agent's datacenter");
            BOOST_TEST(!read_key(key).exists);
        }
        co_await expect_no_sessions_named(name);
    });
}

BOOST_AUTO_TEST_CASE(semaphore_for_a_datacenter_that_does_not_exist_fails_at_once_and_leaves_nothing_behind)
{
    const auto name = agent().unique_prefix("no_such_dc_semaphore");
    const auto prefix = name + "sem";
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        {
            client c(ioc.get_executor(), lock_client(name));
            auto opts = named_session(name);
            opts.request.datacenter = "no-such-dc";
            semaphore s(c, prefix, 2, opts);
            auto ec = co_await within(s.acquire(tuple_awaitable), 4s, "semaphore acquire for dc no-such-dc");
            expect_clear_failure(ec);
            BOOST_TEST(!s.is_held());
            BOOST_TEST(agent().sessions_named(name).empty(), "a session was created in the agent's datacenter");
            BOOST_TEST(contender_sessions(prefix).empty());
            BOOST_TEST(!read_semaphore_record(prefix).exists);
        }
        co_await expect_no_sessions_named(name);
    });
}

BOOST_AUTO_TEST_CASE(election_for_a_datacenter_that_does_not_exist_fails_at_once)
{
    const auto name = agent().unique_prefix("no_such_dc_election");
    const auto key = name + "leader";
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        {
            client c(ioc.get_executor(), lock_client(name));
            election_options opts;
            opts.lock.request.datacenter = "no-such-dc";
            election e(c, key, opts);
            auto ec = co_await within(e.campaign("me", tuple_awaitable), 4s, "campaign for dc no-such-dc");
            expect_clear_failure(ec);
            BOOST_TEST(!e.is_leader());
            BOOST_TEST(agent().sessions_named(name).empty(), "a session was created in the agent's datacenter");
            BOOST_TEST(!read_key(key).exists);
        }
        co_await expect_no_sessions_named(name);
    });
}

// A lock whose requests name the datacenter explicitly and carry a token of their own (the client's defaults name
// neither) holds with a session of its own, created, renewed and destroyed with those: what the wire shows.
BOOST_AUTO_TEST_CASE(lock_with_its_own_request_options_creates_renews_and_destroys_its_session_with_them)
{
    const auto name = agent().unique_prefix("request_options_lock");
    const auto key = name + "lock";
    const auto dc = agent_datacenter();
    const std::string token_header = "X-Consul-Token: colock-test-lock-token";
    tcp_proxy proxy(agent().host(), agent().http_port());
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        {
            client c(ioc.get_executor(), lock_client(name, 2s, proxy.port()));
            lock_options opts;
            opts.request.datacenter = dc;
            opts.request.token = "colock-test-lock-token"; // the dev agent runs without ACLs: any token will do
            lock l(c, key, opts);
            co_await expect_acquired(l);
            const auto sid = sid_of(l);
            BOOST_TEST(read_key(key).session == sid);
            BOOST_TEST(!c.shared_session().id().has_value(), "the lock used the client's shared session");
            const auto renew = "PUT /v1/session/renew/" + sid + "?dc=" + dc;
            co_await require_eventually([&] { return proxy.requests_forwarded(renew, token_header) >= 1; }, 3s,
                                        "a renewal with the lock's datacenter and token");
            BOOST_TEST(l.is_held());
            co_await expect_released(l);
            const auto destroy = "PUT /v1/session/destroy/" + sid + "?dc=" + dc;
            co_await require_eventually([&] { return proxy.requests_forwarded(destroy, token_header) >= 1; }, 3s,
                                        "a destroy with the lock's datacenter and token");
            BOOST_TEST(proxy.requests_forwarded("PUT /v1/session/create?dc=" + dc, token_header) == 1u);
            // Every session request of the client went out with them.
            BOOST_TEST(proxy.requests_forwarded("PUT /v1/session/") ==
                       proxy.requests_forwarded("PUT /v1/session/", token_header));
        }
        co_await expect_no_sessions_named(name);
    });
}

// A session given to a lock or semaphore must be one for the same datacenter, namespace, partition and token as
// the recipe's requests: otherwise the acquire is refused at once, before any request, and the log names what
// differs (never a token). A matching one is used.
BOOST_AUTO_TEST_CASE(a_given_session_that_does_not_match_the_recipes_request_options_is_refused)
{
    const auto name = agent().unique_prefix("session_mismatch");
    const auto key = name + "lock";
    const auto prefix = name + "sem";
    const auto dc = agent_datacenter();
    std::vector<std::string> lines;
    colock::logger log;
    log.min_level = colock::logger::level::warning;
    log.sink = [&](colock::logger::level, std::string_view line) { lines.emplace_back(line); };
    auto logged = [&](const std::string& text) {
        return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) { return l.find(text) != l.npos; });
    };
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        {
            client c(ioc.get_executor(), lock_client(name), log);
            session_options so;
            so.name = name;
            so.ttl = 10s;
            so.node_checks.emplace();
            session plain(c, so); // the client's defaults

            lock_options lo;
            lo.session = &plain;
            lo.request.datacenter = "no-such-dc";
            {
                lock l(c, key, lo);
                auto ec = co_await within(l.acquire(tuple_awaitable), 2s, "lock acquire with a mismatched session");
                BOOST_TEST(ec == errc::session_mismatch, ec.message());
                BOOST_TEST(!plain.id().has_value(), "the mismatched session was started");
                BOOST_TEST(logged("lock '" + key + "': the given session does not match the lock's request options: "
                                  "datacenter (session '', requests 'no-such-dc')"));
            }
            lo.request.datacenter.clear();
            lo.request.token = "another-token";
            {
                lock l(c, key, lo);
                auto ec = co_await within(l.acquire(tuple_awaitable), 2s, "lock acquire with another token");
                BOOST_TEST(ec == errc::session_mismatch, ec.message());
                BOOST_TEST(logged("the given session does not match the lock's request options: token"));
            }
            semaphore_options sopts;
            sopts.session = &plain;
            sopts.request.token = "another-token";
            {
                semaphore s(c, prefix, 1, sopts);
                auto ec = co_await within(s.acquire(tuple_awaitable), 2s, "semaphore acquire with another token");
                BOOST_TEST(ec == errc::session_mismatch, ec.message());
                BOOST_TEST(logged("semaphore '" + prefix + "': the given session does not match the semaphore's "
                                  "request options: token"));
            }
            BOOST_TEST(!logged("another-token"), "a token was logged");
            BOOST_TEST(!plain.id().has_value());
            BOOST_TEST(agent().sessions_named(name).empty());
            BOOST_TEST(!read_key(key).exists);
            BOOST_TEST(contender_sessions(prefix).empty());

            // A session made with the recipe's request options is used.
            request_options request;
            request.datacenter = dc;
            request.token = "another-token";
            session matching(c, so, request);
            lo.request = request;
            lo.session = &matching;
            {
                lock l(c, key, lo);
                co_await expect_acquired(l);
                BOOST_TEST(sid_of(l) == sid_of(matching));
                BOOST_TEST(read_key(key).session == sid_of(matching));
                co_await expect_released(l);
            }
            co_await matching.close(tuple_awaitable);
        }
        co_await expect_no_sessions_named(name);
    });
}

// Local turns go by place, not by spelling (CONSUL.md 1.1): a lock naming no datacenter and one naming the agent's
// own are locks of one key. With the client's default naming the datacenter, both would hold with the shared
// session (Consul lets one session acquire a key it holds again), so only the local turn keeps them apart; with
// no default, the one naming it learns the agent's datacenter name and waits for its turn without a request.
BOOST_AUTO_TEST_CASE(two_spellings_of_the_agents_datacenter_take_one_local_turn)
{
    const auto name = agent().unique_prefix("place_spelling");
    const auto key = name + "lock";
    const auto dc = agent_datacenter();
    tcp_proxy proxy(agent().host(), agent().http_port());
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        for (const bool default_names_it : {true, false}) {
            BOOST_TEST_MESSAGE("the client's default datacenter is '" << (default_names_it ? dc : "") << "'");
            const auto asked = proxy.requests_forwarded("GET /v1/agent/self");
            {
                auto co = lock_client(name, 10s, proxy.port());
                co.datacenter = default_names_it ? dc : "";
                client c(ioc.get_executor(), co);
                lock_options spelled;
                spelled.request.datacenter = dc;
                lock unnamed(c, key), named(c, key, spelled);
                co_await expect_acquired(unnamed);
                const auto txns = proxy.requests_forwarded("PUT /v1/txn");
                const auto creates = proxy.requests_forwarded("PUT /v1/session/create");
                const bool both = co_await try_acquire_once(named);
                BOOST_TEST(!both, "both lock objects hold the key");
                BOOST_TEST(!named.is_held());
                BOOST_TEST(proxy.requests_forwarded("PUT /v1/txn") == txns, "the local turn was not enough");
                BOOST_TEST(proxy.requests_forwarded("PUT /v1/session/create") == creates);
                co_await expect_released(unnamed);
                co_await expect_acquired(named);
                BOOST_TEST(read_key(key).session == sid_of(named));
                const bool both_again = co_await try_acquire_once(unnamed);
                BOOST_TEST(!both_again);
                co_await expect_released(named);
                BOOST_TEST(proxy.requests_forwarded("GET /v1/agent/self") - asked == (default_names_it ? 0u : 1u));
                co_await c.close(tuple_awaitable);
            }
            co_await expect_no_sessions_named(name);
        }
    });
}

BOOST_AUTO_TEST_SUITE_END()
