// Background tasks that throw, against the real agent: an exception out of a key's watch loop, a
// session's renewal or creation, a lock's release (a bug, std::bad_alloc, a
// user's callback) completes whoever waits on that task with errc::internal_error instead of leaving
// it waiting forever, and what the task held (a watch slot, a session) is given back. The failures
// are injected through consul/testing.hpp.

#include <colock/consul/client.hpp>
#include <colock/consul/session.hpp>
#include <colock/lock.hpp>
#include <colock/semaphore.hpp>

#include "async_test.hpp"
#include "consul/client_impl.hpp"
#include "consul/testing.hpp"
#include "consul/watch_service.hpp"
#include "consul_agent.hpp"
#include "lock_helpers.hpp"

#include <memory>
#include <string>

namespace asio = boost::asio;
using namespace colock;
using namespace colock::consul;
using namespace colock::test;
using namespace std::chrono_literals;

BOOST_TEST_GLOBAL_FIXTURE(consul_agent_fixture);

namespace {

// What a lost() completed with: the wait's own error and why the hold ended.
struct loss {
    bool done = false;
    error_code ec;
    error_code why;
};
auto record_loss(std::shared_ptr<loss> l)
{
    return [l](error_code ec, error_code why) {
        l->ec = ec;
        l->why = why;
        l->done = true;
    };
}

} // namespace

BOOST_AUTO_TEST_SUITE(test_background_failures)

BOOST_AUTO_TEST_CASE(a_throwing_watch_loop_completes_its_waiter_and_frees_the_slot)
{
    auto& agent = consul_agent::instance();
    const auto prefix = agent.unique_prefix("bg_watch");
    const std::string name = "colock-test-bg-watch-" + prefix;
    run_async([&](asio::io_context& io) -> asio::awaitable<void> {
        client holder_client(io.get_executor(), lock_client(name + "-holder"));
        auto options = lock_client(name);
        options.watch_wait = 500ms; // the waiter's blocking query starts a new round at least this often
        client waiter_client(io.get_executor(), options);
        auto& watches = waiter_client.impl()->watches();
        const auto key = prefix + "key";

        lock theirs(holder_client, key);
        co_await expect_acquired(theirs);
        lock mine(waiter_client, key);
        auto got = std::make_shared<completion>();
        mine.acquire(record_into(got));
        co_await require_eventually([&] { return watches.blocking_queries() == 1; }, 3s, "the waiter's watch started");

        testing::fail_next_round(waiter_client, "watch");
        co_await require_eventually([&] { return got->done; }, 5s, "the waiter's acquire completed");
        BOOST_TEST(got->ec == errc::internal_error, got->ec.message());
        BOOST_TEST(!mine.is_held());
        BOOST_TEST(watches.blocking_queries() == 0u); // the failed loop's slot is free
        BOOST_TEST(watches.polled_keys() == 0u);

        // The key can be waited on again, by a blocking query of its own, and is handed over.
        auto again = std::make_shared<completion>();
        mine.acquire(record_into(again));
        co_await require_eventually([&] { return watches.blocking_queries() == 1; }, 3s, "a new watch started");
        co_await expect_released(theirs);
        co_await require_eventually([&] { return again->done; }, 5s, "the second acquire completed");
        BOOST_TEST(!again->ec, again->ec.message());
        BOOST_TEST(mine.is_held());
        co_await expect_released(mine);
    });
}

BOOST_AUTO_TEST_CASE(a_throwing_poller_completes_the_polled_waiter)
{
    auto& agent = consul_agent::instance();
    const auto prefix = agent.unique_prefix("bg_poll");
    const std::string name = "colock-test-bg-poll-" + prefix;
    run_async([&](asio::io_context& io) -> asio::awaitable<void> {
        client holder_client(io.get_executor(), lock_client(name + "-holder"));
        auto options = lock_client(name);
        options.max_watches = 1;
        client waiter_client(io.get_executor(), options);
        auto& watches = waiter_client.impl()->watches();

        // The waiter client holds one key, whose watch takes its only blocking query.
        lock first(waiter_client, prefix + "first");
        co_await expect_acquired(first);
        co_await require_eventually([&] { return watches.blocking_queries() == 1; }, 3s, "the held key's watch started");

        // It waits for a second key without a watch: that key is polled.
        lock theirs(holder_client, prefix + "second");
        co_await expect_acquired(theirs);
        lock_options waiting;
        waiting.poll_interval = 200ms;
        lock mine(waiter_client, prefix + "second", waiting);
        auto got = std::make_shared<completion>();
        mine.acquire(record_into(got));
        co_await require_eventually([&] { return watches.polled_keys() == 1; }, 3s, "the waiting key is polled");

        testing::fail_next_round(waiter_client, "watch poll");
        co_await require_eventually([&] { return got->done; }, 5s, "the polled waiter's acquire completed");
        BOOST_TEST(got->ec == errc::internal_error, got->ec.message());
        BOOST_TEST(watches.polled_keys() == 0u);

        // A new poller follows the key for the next waiter.
        auto again = std::make_shared<completion>();
        mine.acquire(record_into(again));
        co_await require_eventually([&] { return watches.polled_keys() == 1; }, 3s, "the key is polled again");
        co_await expect_released(theirs);
        co_await require_eventually([&] { return again->done; }, 5s, "the second acquire completed");
        BOOST_TEST(!again->ec, again->ec.message());
        BOOST_TEST(mine.is_held());
        co_await expect_released(mine);
        co_await expect_released(first);
    });
}

BOOST_AUTO_TEST_CASE(a_throwing_renewal_ends_the_session_and_its_holders_see_the_loss)
{
    auto& agent = consul_agent::instance();
    const auto prefix = agent.unique_prefix("bg_renew");
    const std::string name = "colock-test-bg-renew-" + prefix;
    run_async([&](asio::io_context& io) -> asio::awaitable<void> {
        client c(io.get_executor(), lock_client(name, 1s)); // renewed about every 500 ms
        lock l(c, prefix + "key");
        co_await expect_acquired(l);
        auto held = std::make_shared<loss>();
        l.lost(record_loss(held));
        auto session_lost = std::make_shared<completion>();
        c.impl()->shared_session()->lost(record_into(session_lost));

        testing::fail_next_round(c, "session renew");
        co_await require_eventually([&] { return held->done && session_lost->done; }, 5s,
                                    "the lock and the session saw the loss");
        BOOST_TEST(!held->ec, held->ec.message());
        BOOST_TEST(held->why == errc::internal_error, held->why.message());
        BOOST_TEST(session_lost->ec == errc::internal_error, session_lost->ec.message());
        BOOST_TEST(!l.is_held());

        // The next acquire starts a new session.
        co_await expect_acquired(l);
        co_await expect_released(l);
    });
}

BOOST_AUTO_TEST_CASE(a_throwing_session_creation_wakes_its_creator)
{
    auto& agent = consul_agent::instance();
    const auto prefix = agent.unique_prefix("bg_create");
    const std::string name = "colock-test-bg-create-" + prefix;
    run_async([&](asio::io_context& io) -> asio::awaitable<void> {
        client c(io.get_executor(), real_agent_options());
        session_options so;
        so.name = name;
        so.ttl = 10s;
        so.node_checks = std::vector<std::string>{};
        session s(c, so);
        testing::fail_next_round(c, "session create");
        auto first = std::make_shared<completion>();
        s.start([first](error_code ec, session_id) { record_into(first)(ec); });
        co_await require_eventually([&] { return first->done; }, 5s, "the start completed");
        BOOST_TEST(first->ec == errc::internal_error, first->ec.message());
        BOOST_TEST(!s.is_live());

        auto [ec, id] = co_await s.start(tuple_awaitable); // the next attempt works
        BOOST_TEST(!ec, ec.message());
        BOOST_TEST(s.is_live());
        auto [cec] = co_await s.close(tuple_awaitable);
        BOOST_TEST(!cec, cec.message());
    });
}

BOOST_AUTO_TEST_CASE(a_throwing_release_completes_the_release_call)
{
    auto& agent = consul_agent::instance();
    const auto prefix = agent.unique_prefix("bg_release");
    const std::string name = "colock-test-bg-release-" + prefix;
    run_async([&](asio::io_context& io) -> asio::awaitable<void> {
        client c(io.get_executor(), lock_client(name));
        lock l(c, prefix + "key");
        co_await expect_acquired(l);
        testing::fail_next_round(c, "lock release");
        auto released = std::make_shared<completion>();
        l.release(record_into(released));
        co_await require_eventually([&] { return released->done; }, 5s, "the release completed");
        BOOST_TEST(released->ec == errc::internal_error, released->ec.message());
        BOOST_TEST(!l.is_held());
        // The local turn was given back with the task: the lock can be taken again at once.
        co_await expect_acquired(l);
        co_await expect_released(l);
    });
}

// A semaphore follows its prefix through the watch service, like a lock its key.
BOOST_AUTO_TEST_CASE(a_throwing_watch_of_a_held_semaphore_ends_the_hold)
{
    auto& agent = consul_agent::instance();
    const auto prefix = agent.unique_prefix("bg_semaphore");
    const std::string name = "colock-test-bg-semaphore-" + prefix;
    run_async([&](asio::io_context& io) -> asio::awaitable<void> {
        client c(io.get_executor(), real_agent_options());
        semaphore s(c, prefix + "sem", 2, named_session(name));
        testing::fail_next_round(c, "watch");
        co_await expect_acquired(s);
        auto held = std::make_shared<loss>();
        s.lost(record_loss(held));
        co_await require_eventually([&] { return held->done; }, 5s, "the semaphore saw the loss");
        BOOST_TEST(!held->ec, held->ec.message());
        BOOST_TEST(held->why == errc::internal_error, held->why.message());
        BOOST_TEST(!s.is_held());
        co_await expect_acquired(s);
        co_await expect_released(s);
    });
}

BOOST_AUTO_TEST_SUITE_END()
