// consul::kv_watch against the scripted fake agent (TESTING.md U9 and "HTTP/JSON bad input": a blocking query that
// returns at once with the same index must be held to the token-bucket rate; CONSUL.md section 4): the index rules on
// the wire, pacing, error backoff, and cancellation of a query in flight.

#include <colock/consul/client.hpp>
#include <colock/consul/kv_watch.hpp>

#include "async_test.hpp"
#include "fake_agent.hpp"
#include "fault_helpers.hpp"
#include "test_options.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace colock;
using namespace colock::consul;
using namespace colock::test;
using namespace std::chrono_literals;

namespace {

std::string entry_reply(std::uint64_t index, const std::string& key = "k")
{
    return fake_agent::consul_reply(R"([{"LockIndex":0,"Key":")" + key +
                                        R"(","Flags":0,"Value":"dmFsdWU=","CreateIndex":3,"ModifyIndex":)" +
                                        std::to_string(index) + "}]",
                                    index);
}

// Runs `body` with a kv_watch on `key` with `wo`, on a client with max_attempts 1 (every failure reaches the watch)
// against `fake`, under run_async's deadline; checks that the body ran to its end.
void with_watch(fake_agent& fake, const std::string& key, kv_watch_options wo,
                std::function<asio::awaitable<void>(kv_watch&)> body)
{
    with_client(fake_agent_options(fake.port(), 1), [&](client& c, asio::io_context&) -> asio::awaitable<void> {
        kv_watch w(c, key, wo);
        co_await body(w);
    });
}

// The next next() delivers a change with `index`.
asio::awaitable<kv_get_result> expect_change(kv_watch& w, std::uint64_t index)
{
    auto [ec, r] = co_await w.next(tuple_awaitable);
    BOOST_TEST_REQUIRE(!ec, ec.message());
    BOOST_TEST(r.meta.index == index);
    co_return r;
}

kv_watch_options waiting(std::chrono::milliseconds wait)
{
    kv_watch_options wo;
    wo.wait = wait;
    return wo;
}

} // namespace

BOOST_AUTO_TEST_SUITE(kv_watch_fault)

BOOST_AUTO_TEST_CASE(first_request_is_a_plain_read_then_index_and_wait_are_sent)
{
    fake_agent fake;
    fake.push(fake_step::respond(entry_reply(7)));
    fake.push(fake_step::respond(entry_reply(7))); // a wake-up with the same index: not delivered
    fake.push(fake_step::respond(entry_reply(8)));
    with_watch(fake, "k", waiting(1500ms), [&](kv_watch& w) -> asio::awaitable<void> {
        BOOST_TEST(w.index() == 0u);
        const auto r1 = co_await expect_change(w, 7);
        BOOST_TEST(r1.entry.has_value());
        BOOST_TEST(w.index() == 7u);
        co_await expect_change(w, 8);
        BOOST_TEST(w.index() == 8u);
    });
    expect_targets(fake.requests(), {"/v1/kv/k", "/v1/kv/k?index=7&wait=1500ms", "/v1/kv/k?index=7&wait=1500ms"});
}

BOOST_AUTO_TEST_CASE(consistent_watch_sends_consistent_on_every_request)
{
    fake_agent fake;
    fake.push(fake_step::respond(entry_reply(3, "a/b")));
    fake.push(fake_step::respond(entry_reply(4, "a/b")));
    auto wo = waiting(2s);
    wo.consistency = consistency_mode::consistent;
    with_watch(fake, "a/b", wo, [&](kv_watch& w) -> asio::awaitable<void> {
        co_await expect_change(w, 3);
        co_await expect_change(w, 4);
    });
    expect_targets(fake.requests(), {"/v1/kv/a/b?consistent", "/v1/kv/a/b?consistent&index=3&wait=2000ms"});
}

BOOST_AUTO_TEST_CASE(same_index_at_once_forever_is_held_to_the_token_bucket_rate)
{
    fake_agent fake;
    fake.push(fake_step::respond(entry_reply(1000)));
    // Every further query returns at once with the same index (a buggy or churning server).
    fake.set_default(fake_step::respond(entry_reply(1000)));
    std::size_t churn_requests = 0;
    // State the callback writes to lives outside the coroutine frame, so a failed check cannot leave it dangling.
    bool done = false;
    error_code ec2;
    kv_get_result r2;
    auto wo = waiting(1s);
    wo.burst = 4;
    wo.refill = 50ms;
    with_watch(fake, "k", wo, [&](kv_watch& w) -> asio::awaitable<void> {
        co_await expect_change(w, 1000);

        w.next([&](error_code e, kv_get_result r) {
            ec2 = e;
            r2 = std::move(r);
            done = true;
        });
        co_await sleep_for(600ms);
        BOOST_TEST(!done); // same index: nothing to deliver
        churn_requests = fake.requests().size() - 1;
        fake.push(fake_step::respond(entry_reply(1001))); // now a real change
        const auto t0 = clock_type::now();
        BOOST_TEST_REQUIRE(co_await eventually([&] { return done; }, 2s));
        BOOST_TEST(ms_since(t0) < 500);
        BOOST_TEST(!ec2, ec2.message());
        BOOST_TEST(r2.meta.index == 1001u);
        BOOST_TEST(w.index() == 1001u);
    });
    BOOST_TEST_MESSAGE(churn_requests << " queries in 600 ms of same-index replies");
    // 600 ms at burst 4, refill 50 ms: 3 tokens left after the first read + 12 refills; generous slack for a loaded
    // machine, but far from the hundreds a hot loop would send.
    BOOST_TEST(churn_requests <= 20u, churn_requests << " requests in 600 ms");
    BOOST_TEST(churn_requests >= 5u, churn_requests << " requests in 600 ms"); // it did keep asking
    for (const auto& r : fake.requests())
        if (r.target != "/v1/kv/k")
            BOOST_TEST(r.target == "/v1/kv/k?index=1000&wait=1000ms");
}

BOOST_AUTO_TEST_CASE(index_going_backwards_is_delivered_and_the_next_request_carries_the_lower_index)
{
    fake_agent fake;
    fake.push(fake_step::respond(entry_reply(100)));
    fake.push(fake_step::respond(entry_reply(50))); // snapshot restore / restarted dev agent
    fake.push(fake_step::respond(entry_reply(51)));
    with_watch(fake, "k", waiting(1s), [&](kv_watch& w) -> asio::awaitable<void> {
        co_await expect_change(w, 100);
        co_await expect_change(w, 50); // delivered as a change
        BOOST_TEST(w.index() == 50u);
        co_await expect_change(w, 51);
    });
    expect_targets(fake.requests(), {"/v1/kv/k", "/v1/kv/k?index=100&wait=1000ms", "/v1/kv/k?index=50&wait=1000ms"});
}

BOOST_AUTO_TEST_CASE(errors_are_delivered_and_the_next_request_waits_for_the_backoff)
{
    constexpr int errors = 7;
    fake_agent fake;
    fake.push(fake_step::respond(entry_reply(5)));
    for (int i = 0; i < errors; ++i)
        fake.push(fake_step::respond(fake_agent::consul_error(500, "No cluster leader")));
    fake.push(fake_step::respond(entry_reply(6)));
    fake.push(fake_step::respond(entry_reply(7)));
    auto wo = waiting(1s);
    wo.burst = 100; // the bucket never binds here: only the backoff spaces the requests
    wo.refill = 1ms;
    wo.error_backoff_initial = 150ms;
    wo.error_backoff_max = 150ms; // each wait is uniform in [0, 150 ms]
    with_watch(fake, "k", wo, [&](kv_watch& w) -> asio::awaitable<void> {
        auto [ec0, r0] = co_await w.next(tuple_awaitable);
        BOOST_TEST_REQUIRE(!ec0, ec0.message());

        long long total_after_errors = 0;
        for (int i = 0; i < errors; ++i) {
            const auto t0 = clock_type::now();
            auto [ec, r] = co_await w.next(tuple_awaitable);
            const auto took = ms_since(t0);
            BOOST_TEST(ec == make_http_error(500), ec.message());
            BOOST_TEST(!r.entry.has_value());
            BOOST_TEST(took < 400, "next() after an error took " << took << " ms");
            if (i > 0)
                total_after_errors += took;
        }
        const auto t1 = clock_type::now();
        co_await expect_change(w, 6); // after the last error: backoff, then success
        const auto took6 = ms_since(t1);
        BOOST_TEST(took6 < 400);
        total_after_errors += took6;
        // 7 independent waits uniform in [0, 150]: their sum is below 100 ms with probability ~1e-5, while
        // without any backoff it would be a few ms.
        BOOST_TEST(total_after_errors >= 100, "requests after errors came after " << total_after_errors << " ms");
        BOOST_TEST(total_after_errors < 7 * 150 + 700);

        // A success resets the backoff: the next change is asked for at once.
        const auto t2 = clock_type::now();
        auto [ec7, r7] = co_await w.next(tuple_awaitable);
        BOOST_TEST(!ec7, ec7.message());
        BOOST_TEST(r7.meta.index == 7u);
        BOOST_TEST(ms_since(t2) < 250);
    });
    const auto reqs = fake.requests();
    BOOST_TEST_REQUIRE(reqs.size() == static_cast<std::size_t>(errors + 3));
    for (std::size_t i = 1; i < reqs.size(); ++i)
        BOOST_TEST(reqs[i].target == (i < reqs.size() - 1 ? "/v1/kv/k?index=5&wait=1000ms" : "/v1/kv/k?index=6&wait=1000ms"));
}

BOOST_AUTO_TEST_CASE(after_an_error_only_the_backoff_delays_the_next_request_when_tokens_are_left)
{
    fake_agent fake;
    fake.push(fake_step::respond(entry_reply(5)));
    fake.push(fake_step::respond(fake_agent::consul_error(500, "No cluster leader")));
    fake.push(fake_step::respond(entry_reply(6)));
    auto wo = waiting(1s);
    wo.burst = 4;       // tokens are left after two queries...
    wo.refill = 600ms;  // ...and the next refill is far away
    wo.error_backoff_initial = 20ms;
    wo.error_backoff_max = 20ms;
    with_watch(fake, "k", wo, [&](kv_watch& w) -> asio::awaitable<void> {
        auto [ec1, r1] = co_await w.next(tuple_awaitable);
        BOOST_TEST_REQUIRE(!ec1, ec1.message());
        auto [ec2, r2] = co_await w.next(tuple_awaitable);
        BOOST_TEST_REQUIRE(ec2 == make_http_error(500), ec2.message());
        const auto t0 = clock_type::now();
        auto [ec3, r3] = co_await w.next(tuple_awaitable);
        const auto took = ms_since(t0);
        BOOST_TEST(!ec3, ec3.message());
        BOOST_TEST(r3.meta.index == 6u);
        // Backoff (<= 20 ms) and a token already in the bucket: no reason to wait for the next refill.
        BOOST_TEST(took < 250, "the request after the error waited " << took << " ms");
    });
    BOOST_TEST(fake.requests().size() == 3u);
}

void cancel_in_flight(asio::cancellation_type type)
{
    fake_agent fake;
    fake.push(fake_step::respond(entry_reply(5)));
    fake.push(fake_step::never_reply());
    fake.push(fake_step::respond(entry_reply(6)));
    // Outside the coroutine frame: the pending next() refers to them even if a check fails early.
    asio::cancellation_signal signal;
    bool done = false;
    error_code ec2;
    // wait 2 s: the deadline of the blocking query is far beyond the cancellation.
    with_watch(fake, "k", waiting(2s), [&](kv_watch& w) -> asio::awaitable<void> {
        co_await expect_change(w, 5);

        w.next(asio::bind_cancellation_slot(signal.slot(), [&](error_code e, kv_get_result) {
            ec2 = e;
            done = true;
        }));
        BOOST_TEST_REQUIRE(co_await eventually([&] { return fake.requests().size() == 2u; }, 2s));
        co_await sleep_for(50ms);
        BOOST_TEST(!done);
        const auto t0 = clock_type::now();
        signal.emit(type);
        BOOST_TEST_REQUIRE(co_await eventually([&] { return done; }, 1500ms));
        const auto took = ms_since(t0);
        BOOST_TEST(ec2 == asio::error::operation_aborted, ec2.message());
        BOOST_TEST(took < 300, "cancellation took " << took << " ms");

        // The watch stays usable and continues from the last delivered index.
        auto [ec3, r3] = co_await w.next(tuple_awaitable);
        BOOST_TEST(!ec3, ec3.message());
        BOOST_TEST(r3.meta.index == 6u);
    });
    const auto reqs = fake.requests();
    expect_targets(reqs, {"/v1/kv/k", "/v1/kv/k?index=5&wait=2000ms", "/v1/kv/k?index=5&wait=2000ms"});
    BOOST_TEST(reqs[2].connection != reqs[1].connection); // the abandoned connection was not reused
}

BOOST_AUTO_TEST_CASE(terminal_cancellation_of_next_in_flight_completes_promptly)
{
    cancel_in_flight(asio::cancellation_type::terminal);
}

BOOST_AUTO_TEST_CASE(total_cancellation_of_next_in_flight_completes_promptly)
{
    // kv_watch::next documents "Cancellation: total".
    cancel_in_flight(asio::cancellation_type::total);
}

BOOST_AUTO_TEST_CASE(a_second_next_while_one_is_pending_is_refused)
{
    fake_agent fake;
    fake.push(fake_step::never_reply());
    error_code first_ec;
    bool first_done = false;
    with_client(fake_agent_options(fake.port(), 1), [&](client& c, asio::io_context&) -> asio::awaitable<void> {
        {
            kv_watch w(c, "k");
            w.next([&](error_code ec, kv_get_result) {
                first_ec = ec;
                first_done = true;
            });
            auto [ec, r] = co_await w.next(tuple_awaitable);
            BOOST_TEST(ec == errc::operation_in_progress, ec.message());
            BOOST_TEST(!first_done);
        } // destroying the watch cancels the pending next()
        const auto t0 = clock_type::now();
        BOOST_TEST(co_await eventually([&] { return first_done; }, 2s));
        BOOST_TEST(first_ec == asio::error::operation_aborted, first_ec.message());
        BOOST_TEST((clock_type::now() - t0 < 500ms), std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0).count());
    });
}

BOOST_AUTO_TEST_SUITE_END()
