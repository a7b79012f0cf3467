// client::close() against the real agent: it gives back every hold of the client's recipes (locks on the shared
// session and on their own, a semaphore slot, a leadership), stops pending acquires and watches, destroys the
// sessions, and afterwards the event loop runs out of work by itself.

#include <colock/consul/client.hpp>
#include <colock/consul/kv_watch.hpp>
#include <colock/consul/session.hpp>
#include <colock/election.hpp>
#include <colock/lock.hpp>
#include <colock/semaphore.hpp>

#include "async_test.hpp"
#include "consul_agent.hpp"
#include "fault_helpers.hpp"
#include "kv_probe.hpp"
#include "lock_helpers.hpp"
#include "test_options.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <memory>
#include <string>

namespace asio = boost::asio;
using namespace colock;
using namespace colock::consul;
using namespace colock::test;
using namespace std::chrono_literals;

BOOST_TEST_GLOBAL_FIXTURE(consul_agent_fixture);

BOOST_AUTO_TEST_SUITE(test_client_close)

BOOST_AUTO_TEST_CASE(close_gives_back_every_hold_destroys_the_sessions_and_the_loop_runs_out_of_work)
{
    auto& agent = consul_agent::instance();
    const auto prefix = agent.unique_prefix("client_close");
    asio::io_context ioc;
    bool finished = false;
    auto body = [&]() -> asio::awaitable<void> {
        client c(ioc.get_executor(), lock_client(prefix));
        lock shared_lock(c, prefix + "shared");
        auto own_opts = lock_options::with_own_session(10s, 0ms);
        own_opts.own_session->name = prefix + "own";
        lock own(c, prefix + "own-session", own_opts);
        semaphore sem(c, prefix + "sem", 2, named_session(prefix + "sem"));
        election e(c, prefix + "leader");
        co_await expect_acquired(shared_lock);
        co_await expect_acquired(own);
        co_await expect_acquired(sem);
        co_await e.campaign("me");
        BOOST_TEST_REQUIRE(e.is_leader());

        // Pending work that close() must end: an acquire waiting for a held key, and a blocking watch.
        lock waiter(c, prefix + "shared");
        auto waited = std::make_shared<completion>();
        waiter.acquire(record_into(waited));
        kv_watch watch(c, prefix + "watched");
        co_await watch.next(); // the first next() reads; the second blocks
        auto watched = std::make_shared<completion>();
        watch.next([watched](error_code ec, kv_get_result) {
            watched->ec = ec;
            watched->done = true;
        });
        BOOST_TEST(!read_key(prefix + "shared").session.empty());

        auto [ec] = co_await c.close(asio::as_tuple(asio::use_awaitable));
        BOOST_TEST(!ec, ec.message());
        // Given back before close() completed, not later in the background.
        BOOST_TEST(read_key(prefix + "shared").session.empty());
        BOOST_TEST(read_key(prefix + "own-session").session.empty());
        BOOST_TEST(read_key(prefix + "leader").session.empty());
        BOOST_TEST(contender_sessions(prefix + "sem").empty());
        BOOST_TEST(!shared_lock.is_held());
        BOOST_TEST(!own.is_held());
        BOOST_TEST(!sem.is_held());
        BOOST_TEST(!e.is_leader());
        BOOST_TEST(co_await eventually([&] { return waited->done && watched->done; }, 2s));
        BOOST_TEST(waited->ec == asio::error::operation_aborted, waited->ec.message());
        BOOST_TEST(watched->ec == asio::error::operation_aborted, watched->ec.message());
        co_await expect_no_sessions_named(prefix);
        finished = true;
    };
    asio::co_spawn(ioc, body(), [](std::exception_ptr e) {
        if (e)
            std::rethrow_exception(e);
    });
    // No stop(), no explicit session close: the loop must run out of work by itself, well before the deadline.
    const auto t0 = clock_type::now();
    ioc.run_for(30s);
    BOOST_TEST(finished);
    BOOST_TEST(ioc.stopped(), "the event loop still had work " << ms_since(t0) << " ms after the test began");
}

BOOST_AUTO_TEST_CASE(without_close_a_finished_program_keeps_renewing_its_shared_session)
{
    // The control: the same kind of program without close() never runs out of work (the shared session
    // renews), which is why close() exists. Bounded by run_for.
    const auto prefix = consul_agent::instance().unique_prefix("client_no_close");
    asio::io_context ioc;
    client c(ioc.get_executor(), lock_client(prefix, 2s));
    bool finished = false;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            lock l(c, prefix + "k");
            co_await expect_acquired(l);
            co_await l.release();
            finished = true;
        },
        [](std::exception_ptr e) {
            if (e)
                std::rethrow_exception(e);
        });
    ioc.run_for(3s);
    BOOST_TEST(finished);
    BOOST_TEST(!ioc.stopped());
    // Clean up: close() ends the renewal, then the loop ends.
    asio::co_spawn(ioc, c.close(asio::use_awaitable), asio::detached);
    ioc.restart();
    ioc.run_for(10s);
    BOOST_TEST(ioc.stopped());
}

BOOST_AUTO_TEST_CASE(cancel_while_holding_leaves_the_key_to_its_lock_delay_and_close_does_not)
{
    // client::cancel() destroys the sessions without releasing: Consul frees the key but refuses other sessions
    // for the lock-delay. close() releases first, so the key can be taken at once.
    const auto prefix = consul_agent::instance().unique_prefix("client_cancel_delay");
    auto delayed = [&](const std::string& name) {
        auto o = lock_client(prefix + name);
        o.shared_session.lock_delay = 15s;
        return o;
    };
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        client other(ioc.get_executor(), lock_client(prefix + "other"));
        {
            client c(ioc.get_executor(), delayed("cancelled"));
            lock l(c, prefix + "cancelled");
            co_await expect_acquired(l);
            c.cancel();
            auto freed = [&] { return read_key(prefix + "cancelled").session.empty(); };
            co_await require_eventually(freed, 5s, "Consul freeing the key of the destroyed session");
            lock taker(other, prefix + "cancelled");
            co_await expect_refused(taker); // free, but under lock-delay
        }
        {
            client c(ioc.get_executor(), delayed("closed"));
            lock l(c, prefix + "closed");
            co_await expect_acquired(l);
            auto [ec] = co_await c.close(asio::as_tuple(asio::use_awaitable));
            BOOST_TEST(!ec, ec.message());
            lock taker(other, prefix + "closed");
            co_await expect_taken(taker); // released, so no lock-delay
            co_await expect_released(taker);
        }
        co_await other.close(asio::use_awaitable);
        ran = true;
    });
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_SUITE_END()
