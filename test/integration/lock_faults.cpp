// colock::lock against the real agent through a TCP fault proxy (TESTING.md U3, U7, B10, B13; CONSUL.md section 5
// rows 5, 15, 17): a silent partition loses the lock by the local deadline, a cancellation that races a winning write
// leaves nothing held and completes within request_timeout when no reply comes, a lost acquire reply is resolved,
// and connection resets alone never lose the lock.

#include <colock/consul/client.hpp>
#include <colock/consul/session.hpp>
#include <colock/lock.hpp>

#include "async_test.hpp"
#include "consul_agent.hpp"
#include "fault_helpers.hpp"
#include "kv_probe.hpp"
#include "lock_helpers.hpp"
#include "tcp_proxy.hpp"
#include "test_options.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace asio = boost::asio;
using namespace colock;
using namespace colock::consul;
using namespace colock::test;
using namespace std::chrono_literals;

BOOST_TEST_GLOBAL_FIXTURE(consul_agent_fixture);

namespace {

consul_agent& agent() { return consul_agent::instance(); }

// What the acquire's write carries (a read-only txn has no such operation).
constexpr std::string_view lock_write = R"("Verb":"lock")";

// Puts the proxy back to pass however the test body ends, so the client's background clean-up can reach the agent.
struct heal_on_exit {
    tcp_proxy& proxy;
    ~heal_on_exit() { proxy.set_mode(tcp_proxy::mode::pass); }
};

} // namespace

BOOST_AUTO_TEST_SUITE(test_lock_faults)

BOOST_AUTO_TEST_CASE(blackholed_agent_loses_the_lock_by_the_local_deadline_within_the_ttl)
{
    const auto prefix = agent().unique_prefix("lock_blackhole");
    const auto key = prefix + "lock";
    tcp_proxy proxy(agent().host(), agent().http_port());
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        heal_on_exit heal{proxy};
        {
            client c(ioc.get_executor(), lock_client(prefix, 2s, proxy.port()));
            lock l(c, key);
            co_await expect_acquired(l);
            const auto token = l.fencing_token();
            co_await sleep_for(1200ms); // at least one renewal (every TTL/2) went through the proxy
            BOOST_TEST(l.is_held());
            const auto deadline = l.deadline();
            BOOST_TEST((deadline > clock_type::now()));

            proxy.set_mode(tcp_proxy::mode::blackhole); // no FIN, no RST: every request hangs
            const auto blackholed_at = clock_type::now();
            const auto ec = co_await lost_reason(l);
            const auto noticed = clock_type::now();
            BOOST_TEST_MESSAGE("loss reported " << ms_between(blackholed_at, noticed) << " ms after the blackhole, "
                                                << ms_between(deadline, noticed)
                                                << " ms after the deadline seen before it (TTL 2000 ms)");
            BOOST_TEST(ec == errc::session_expired, ec.message());
            // The local timer decides: not after the deadline of the last good renewal (send time + TTL - margin)
            // plus scheduling slack, so within a TTL of the blackhole, whatever the hanging requests do.
            BOOST_TEST((noticed < deadline + 250ms));
            BOOST_TEST(ms_between(blackholed_at, noticed) < 2000);
            BOOST_TEST(!l.is_held());
            BOOST_TEST(l.fencing_token() == 0u);
            BOOST_TEST(token > 0u);

            proxy.set_mode(tcp_proxy::mode::pass);
            // Consul expires the session (2 x TTL after its last renewal) or the client destroys it: the key ends
            // unlocked, and the client's session with it.
            const bool unlocked = co_await eventually_unlocked(key, 8s);
            BOOST_TEST(unlocked);
        }
        co_await expect_no_sessions_named(prefix, 8s);
        ran = true;
    }, 40s);
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(acquire_cancelled_while_its_winning_write_is_in_flight_leaves_nothing_held)
{
    const auto prefix = agent().unique_prefix("lock_cancel_race");
    const auto key = prefix + "lock";
    tcp_proxy proxy(agent().host(), agent().http_port());
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        heal_on_exit heal{proxy};
        {
            client c(ioc.get_executor(), lock_client(prefix, 10s, proxy.port()));
            lock l(c, key);
            // The session exists before the fault: the race is about the lock's own write.
            auto [sec, sid] = co_await c.shared_session().start(tuple_awaitable);
            BOOST_TEST_REQUIRE(!sec, sec.message());

            // Requests reach the agent at once, their replies come 300 ms late: the acquire's write is applied
            // while its reply is still on the way.
            proxy.set_reply_delay(300ms);
            proxy.set_mode(tcp_proxy::mode::delay_replies);
            const auto writes_before = proxy.requests_forwarded("PUT /v1/txn", lock_write);
            asio::cancellation_signal signal;
            auto cancelled_at = clock_type::time_point::max();
            bool write_seen = false;
            auto canceller = [&]() -> asio::awaitable<void> {
                auto write_sent = [&] { return proxy.requests_forwarded("PUT /v1/txn", lock_write) > writes_before; };
                write_seen = co_await eventually(write_sent, 5s);
                co_await sleep_for(50ms); // the agent has applied it; its reply is held by the proxy
                cancelled_at = clock_type::now();
                signal.emit(asio::cancellation_type::terminal);
            };
            asio::co_spawn(ioc, canceller(), asio::detached);
            auto [ec] = co_await l.acquire(asio::bind_cancellation_slot(signal.slot(), tuple_awaitable));
            const auto took = ms_since(cancelled_at);
            BOOST_TEST_REQUIRE(write_seen, "the acquire never sent its write");
            BOOST_TEST_MESSAGE("cancelled acquire completed " << took
                                                              << " ms after the cancellation (replies 300 ms late)");
            BOOST_TEST(ec == asio::error::operation_aborted, ec.message());
            BOOST_TEST(!l.is_held());
            BOOST_TEST(l.fencing_token() == 0u);
            // The write did win the race (the key was created and locked), so the test is about what it says.
            const auto k = read_key(key);
            BOOST_TEST(k.exists);
            BOOST_TEST(k.lock_index >= 1u, "the acquire's write was never applied: no race to test");
            // The header's promise: released before completing.
            BOOST_TEST(k.session != sid.str(), "still locked by our session when the cancelled acquire completed");
            BOOST_TEST(took < 3000);

            proxy.set_mode(tcp_proxy::mode::pass);
            const bool unlocked = co_await eventually_unlocked(key, 3s);
            BOOST_TEST(unlocked, "still locked by " << read_key(key).session);
            const auto after = read_key(key);
            BOOST_TEST(after.session.empty());
        }
        co_await expect_no_sessions_named(prefix);
        ran = true;
    });
    BOOST_TEST(ran);
}

// The bound lock.hpp promises: a cancellation during the acquiring write completes the acquire within
// the client's request_timeout, even when no reply ever comes (the write and then the release each
// time out, and would take several request_timeouts); what is left is finished in the background.
// Cancelled through the operation's slot, and by client::cancel().
BOOST_AUTO_TEST_CASE(acquire_cancelled_while_no_reply_comes_completes_within_request_timeout)
{
    for (const bool by_client : {false, true}) {
        BOOST_TEST_CONTEXT((by_client ? "client::cancel()" : "the acquire's cancellation slot"))
        {
            const auto prefix = agent().unique_prefix(by_client ? "lock_cancel_bound_client" : "lock_cancel_bound");
            const auto key = prefix + "lock";
            tcp_proxy proxy(agent().host(), agent().http_port());
            bool ran = false;
            run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
                heal_on_exit heal{proxy};
                {
                    auto options = lock_client(prefix, 10s, proxy.port());
                    options.request_timeout = 1s;
                    client c(ioc.get_executor(), options);
                    lock l(c, key);
                    auto [sec, sid] = co_await c.shared_session().start(tuple_awaitable);
                    BOOST_TEST_REQUIRE(!sec, sec.message());

                    // Requests reach the agent; no reply ever comes back.
                    proxy.set_mode(tcp_proxy::mode::drop_replies);
                    const auto writes_before = proxy.requests_forwarded("PUT /v1/txn", lock_write);
                    asio::cancellation_signal signal;
                    auto cancelled_at = clock_type::time_point::max();
                    bool write_seen = false;
                    auto canceller = [&]() -> asio::awaitable<void> {
                        auto write_sent = [&] { return proxy.requests_forwarded("PUT /v1/txn", lock_write) > writes_before; };
                        write_seen = co_await eventually(write_sent, 5s);
                        co_await sleep_for(50ms);
                        cancelled_at = clock_type::now();
                        if (by_client)
                            c.cancel();
                        else
                            signal.emit(asio::cancellation_type::terminal);
                    };
                    asio::co_spawn(ioc, canceller(), asio::detached);
                    auto [ec] = co_await l.acquire(asio::bind_cancellation_slot(signal.slot(), tuple_awaitable));
                    const auto took = ms_since(cancelled_at);
                    BOOST_TEST_REQUIRE(write_seen, "the acquire never sent its write");
                    BOOST_TEST_MESSAGE("cancelled acquire completed " << took << " ms after the cancellation"
                                                                      << " (no replies; request_timeout 1000 ms)");
                    BOOST_TEST(ec == asio::error::operation_aborted, ec.message());
                    BOOST_TEST(!l.is_held());
                    BOOST_TEST(took <= 1300); // request_timeout and a little scheduling

                    // The write was applied (its reply was lost); the release that followed frees the key.
                    proxy.set_mode(tcp_proxy::mode::pass);
                    const bool unlocked = co_await eventually_unlocked(key, 5s);
                    BOOST_TEST(unlocked, "still locked by " << read_key(key).session);
                }
                co_await expect_no_sessions_named(prefix);
                ran = true;
            });
            BOOST_TEST(ran);
        }
    }
}

BOOST_AUTO_TEST_CASE(acquire_whose_reply_is_dropped_ends_held_and_verified_or_with_nothing_left)
{
    const auto prefix = agent().unique_prefix("lock_reply_dropped");
    const auto key = prefix + "lock";
    tcp_proxy proxy(agent().host(), agent().http_port());
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        heal_on_exit heal{proxy};
        {
            auto opts = lock_client(prefix, 10s, proxy.port());
            opts.request_timeout = 1s; // the lost reply is given up after 1 s
            client c(ioc.get_executor(), opts);
            lock l(c, key);
            auto [sec, sid] = co_await c.shared_session().start(tuple_awaitable);
            BOOST_TEST_REQUIRE(!sec, sec.message());

            // The write reaches the agent; its reply never comes back (the connection stays open).
            proxy.set_mode(tcp_proxy::mode::drop_replies);
            const auto writes_before = proxy.requests_forwarded("PUT /v1/txn", lock_write);
            bool write_seen = false;
            auto healer = [&]() -> asio::awaitable<void> {
                auto write_sent = [&] { return proxy.requests_forwarded("PUT /v1/txn", lock_write) > writes_before; };
                write_seen = co_await eventually(write_sent, 5s);
                co_await sleep_for(100ms); // its reply has reached the proxy and was dropped
                proxy.set_mode(tcp_proxy::mode::pass);
            };
            asio::co_spawn(ioc, healer(), asio::detached);
            const auto t0 = clock_type::now();
            auto [ec] = co_await l.acquire(tuple_awaitable);
            const auto took = ms_since(t0);
            BOOST_TEST_REQUIRE(write_seen, "the acquire never sent its write");
            BOOST_TEST_MESSAGE("acquire with a dropped reply completed with '" << ec.message() << "' after " << took
                                                                                << " ms");
            const auto k = read_key(key);
            if (!ec) {
                // Held, and Consul agrees; the token is the current write's index.
                BOOST_TEST(l.is_held());
                BOOST_TEST(k.session == sid_of(l));
                BOOST_TEST(k.modify_index == l.fencing_token());
                co_await expect_released(l);
            } else {
                BOOST_TEST(!l.is_held());
                BOOST_TEST(k.session.empty(), "not acquired, yet the key is locked by " << k.session);
            }
            BOOST_TEST(took < 6000);
        }
        co_await expect_no_sessions_named(prefix);
        const bool unlocked = co_await eventually_unlocked(key, 1s);
        BOOST_TEST(unlocked);
        ran = true;
    });
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(connection_resets_while_held_do_not_lose_the_lock)
{
    const auto prefix = agent().unique_prefix("lock_resets");
    const auto key = prefix + "lock";
    tcp_proxy proxy(agent().host(), agent().http_port());
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        using namespace asio::experimental::awaitable_operators;
        {
            client c(ioc.get_executor(), lock_client(prefix, 2s, proxy.port()));
            lock l(c, key);
            co_await expect_acquired(l);
            const auto token = l.fencing_token();
            const auto accepted_before = proxy.connections_accepted();
            // Three resets of every connection (watch and renewals included), then quiet: over ~4 s, four renew
            // periods of a 2 s TTL, the lock must hold.
            auto resets = [&]() -> asio::awaitable<void> {
                for (int i = 0; i < 3; ++i) {
                    co_await sleep_for(700ms);
                    proxy.reset_all();
                }
                co_await sleep_for(2s);
            };
            auto raced = co_await (l.lost(tuple_awaitable) || resets());
            if (raced.index() == 0)
                BOOST_TEST_MESSAGE("lost() completed with " << std::get<1>(std::get<0>(raced)).message());
            BOOST_TEST(raced.index() == 1u, "the lock was lost through connection resets alone");
            BOOST_TEST(l.is_held());
            BOOST_TEST(l.fencing_token() == token);
            BOOST_TEST(read_key(key).session == sid_of(l));
            BOOST_TEST(proxy.connections_accepted() > accepted_before); // the client did reconnect
            BOOST_TEST_MESSAGE("connections through the proxy: " << accepted_before << " before the resets, "
                                                                 << proxy.connections_accepted() << " after");
            co_await expect_released(l);
        }
        co_await expect_no_sessions_named(prefix);
        ran = true;
    });
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_SUITE_END()
