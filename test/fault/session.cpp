// The managed consul::session against the scripted fake agent (TESTING.md D1, U3, CONSUL.md 1.2 and section 5 rows
// 1-3 and 14): TTL adoption, loss on a renew 404, the fail-safe deadline when renewals hang, re-creation after a
// loss, retried creation, and close().

#include <colock/consul/client.hpp>
#include <colock/consul/session.hpp>

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

const std::string id1 = "adf4238a-882b-9ddc-4a9d-5b6758e4159e";
const std::string id2 = "0b6a3d1e-1f11-4c2b-9a57-2c1d2e3f4a5b";

session_options one_second_session()
{
    session_options s;
    s.name = "x";
    s.ttl = 1s;
    s.lock_delay = 0ms;
    s.node_checks = std::vector<std::string>{};
    return s;
}

std::string create_reply(const std::string& id) { return fake_agent::reply(200, R"({"ID":")" + id + R"("})"); }

std::string renew_reply(const std::string& id, const std::string& ttl)
{
    return fake_agent::consul_reply(R"([{"ID":")" + id +
                                        R"(","Name":"x","Node":"n","LockDelay":15000000000,"Behavior":"release","TTL":")" +
                                        ttl + R"(","NodeChecks":["serfHealth"],"CreateIndex":10,"ModifyIndex":10}])",
                                    10);
}

// Runs `body` with a session (`so`) on a client with `o`, under run_async's deadline (`timeout`); checks that the
// body ran to its end.
void with_session(const client_options& o, std::function<asio::awaitable<void>(session&, client&)> body,
                  const session_options& so = one_second_session(), std::chrono::milliseconds timeout = 5s)
{
    with_client(
        o,
        [&](client& c, asio::io_context&) -> asio::awaitable<void> {
            session s(c, so);
            co_await body(s, c);
        },
        timeout);
}

// start() succeeds; returns the new session's id.
asio::awaitable<session_id> expect_started(session& s)
{
    auto [ec, id] = co_await s.start(tuple_awaitable);
    BOOST_TEST_REQUIRE(!ec, ec.message());
    co_return id;
}

asio::awaitable<void> expect_closed(session& s)
{
    auto [ec] = co_await s.close(tuple_awaitable);
    BOOST_TEST(!ec, ec.message());
}

} // namespace

BOOST_AUTO_TEST_SUITE(session_fault)

BOOST_AUTO_TEST_CASE(renew_reply_with_a_larger_ttl_is_adopted)
{
    fake_agent fake;
    fake.push(fake_step::respond(create_reply(id1)));
    fake.push(fake_step::respond(renew_reply(id1, "2s")));
    fake.push(fake_step::respond(fake_agent::reply(200, "true"))); // destroy on close
    with_session(fake_agent_options(fake.port()), [&](session& s, client&) -> asio::awaitable<void> {
        const auto id = co_await expect_started(s);
        BOOST_TEST(id.str() == id1);
        BOOST_TEST(s.ttl() == 1000ms);
        BOOST_TEST(s.generation() == 1u);
        BOOST_TEST_REQUIRE(co_await eventually([&] { return s.ttl() == 2000ms; }, 1500ms));
        BOOST_TEST(s.is_live());
        // The deadline follows the adopted TTL: renew send time + 2 s - margin, i.e. well past the 1 s one.
        BOOST_TEST(ms_between(clock_type::now(), s.deadline()) > 1200);
        co_await expect_closed(s);
        BOOST_TEST(!s.is_live());
    });
    const auto reqs = fake.requests();
    expect_targets(reqs, {"/v1/session/create", "/v1/session/renew/" + id1, "/v1/session/destroy/" + id1});
    BOOST_TEST(reqs[0].method == "PUT");
    BOOST_TEST(reqs[0].body.find(R"("TTL":"1000ms")") != std::string::npos, reqs[0].body);
    BOOST_TEST(reqs[1].method == "PUT");
}

BOOST_AUTO_TEST_CASE(renew_404_is_loss_at_once_without_a_destroy)
{
    fake_agent fake;
    fake.push(fake_step::respond(create_reply(id1)));
    fake.push(fake_step::respond(fake_agent::consul_error(404, "Session id '" + id1 + "' not found")));
    fake.set_default(fake_step::respond(fake_agent::reply(200, "true")));
    with_session(fake_agent_options(fake.port()), [&](session& s, client&) -> asio::awaitable<void> {
        co_await expect_started(s);
        const auto started = clock_type::now();
        auto [lec] = co_await s.lost(tuple_awaitable);
        const auto took = ms_since(started);
        BOOST_TEST(lec == errc::session_invalidated, lec.message());
        BOOST_TEST(lec == condition::ownership_lost);
        BOOST_TEST_MESSAGE("session_invalidated " << took << " ms after start() completed");
        // The first renewal goes out at TTL/2 minus up to 10 % jitter; the 404 is acted on at once.
        BOOST_TEST(took >= 350, "lost after " << took << " ms");
        BOOST_TEST(took < 800, "lost after " << took << " ms");
        BOOST_TEST(!s.is_live());
        BOOST_TEST(!s.id().has_value());
        // lost() on a dead session completes at once with the last reason.
        auto [lec2] = co_await s.lost(tuple_awaitable);
        BOOST_TEST(lec2 == errc::session_invalidated, lec2.message());
        co_await sleep_for(200ms); // room for a (wrong) destroy or further renewals to show up
    });
    const auto reqs = fake.requests();
    BOOST_TEST_REQUIRE(reqs.size() == 2u);
    BOOST_TEST(reqs[1].target == "/v1/session/renew/" + id1);
    BOOST_TEST(count_targets(reqs, "/v1/session/destroy/") == 0u);
}

void expired_while_renewals_hang(fake_step hang, bool renewals_recorded)
{
    fake_agent fake;
    fake.push(fake_step::respond(create_reply(id1)));
    fake.set_default(hang); // every renewal (and the background destroy) hangs
    auto o = fake_agent_options(fake.port());
    o.max_attempts = 1; // keeps the background destroy after the loss short
    with_session(o, [&](session& s, client&) -> asio::awaitable<void> {
        const auto called = clock_type::now();
        co_await expect_started(s);
        const auto started = clock_type::now();
        // D1: the deadline is at most the creation request's send time + TTL.
        BOOST_TEST(ms_between(called, s.deadline()) <= 1000);
        BOOST_TEST(ms_between(started, s.deadline()) >= 900);
        auto [lec] = co_await s.lost(tuple_awaitable);
        const auto lost_at = clock_type::now();
        BOOST_TEST(lec == errc::session_expired, lec.message());
        BOOST_TEST_MESSAGE("session_expired " << ms_between(called, lost_at) << " ms after start() was called, "
                                              << ms_between(started, lost_at) << " ms after it completed");
        // Signalled by the local timer at the deadline (send time + 1 s - 50 ms margin), not before it and not
        // after send time + TTL (plus scheduling slack), although no renewal ever got an answer.
        BOOST_TEST(ms_between(called, lost_at) >= 940, "lost " << ms_between(called, lost_at) << " ms after start()");
        BOOST_TEST(ms_between(started, lost_at) > 500);
        BOOST_TEST(ms_between(started, lost_at) < 1150, "lost " << ms_between(started, lost_at) << " ms after start()");
        BOOST_TEST(!s.is_live());
        BOOST_TEST((s.deadline() == session::clock::time_point::min()));
    });
    if (renewals_recorded)
        BOOST_TEST(count_targets(fake.requests(), "/v1/session/renew/" + id1) >= 1u);
}

BOOST_AUTO_TEST_CASE(renewals_never_answered_end_in_session_expired_at_the_deadline)
{
    expired_while_renewals_hang(fake_step::never_reply(), true);
}

BOOST_AUTO_TEST_CASE(renewals_blackholed_end_in_session_expired_at_the_deadline)
{
    expired_while_renewals_hang(fake_step::blackhole(), false);
}

BOOST_AUTO_TEST_CASE(a_failed_renewal_is_retried_before_the_deadline)
{
    fake_agent fake;
    fake.push(fake_step::respond(create_reply(id1)));
    fake.push(fake_step::respond(fake_agent::consul_error(500, "No cluster leader")));
    fake.push(fake_step::respond(renew_reply(id1, "1s")));
    fake.set_default(fake_step::respond(renew_reply(id1, "1s")));
    bool lost = false; // outside the coroutine: the lost() handler runs when the session is destroyed
    auto o = fake_agent_options(fake.port());
    o.max_attempts = 1; // the session's own retry, not the transport's
    with_session(o, [&](session& s, client&) -> asio::awaitable<void> {
        co_await expect_started(s);
        const auto started = clock_type::now();
        s.lost([&](error_code) { lost = true; });
        co_await sleep_for(1200ms); // past the first deadline (~950 ms)
        BOOST_TEST(!lost);
        BOOST_TEST(s.is_live());
        BOOST_TEST(ms_between(started, s.deadline()) > 1000);
    });
    const auto reqs = fake.requests();
    BOOST_TEST_REQUIRE(reqs.size() >= 3u);
    BOOST_TEST(reqs[1].target == "/v1/session/renew/" + id1);
    BOOST_TEST(reqs[2].target == "/v1/session/renew/" + id1);
}

BOOST_AUTO_TEST_CASE(deadline_after_a_slow_renewal_counts_from_its_send_time)
{
    // D1: deadline <= send time + TTL - margin. A reply that arrives 300 ms late must not stretch the deadline.
    fake_agent fake;
    fake.push(fake_step::respond(create_reply(id1)));
    fake.push(fake_step::respond(renew_reply(id1, "1s"), 300ms));
    fake.push(fake_step::respond(fake_agent::reply(200, "true"))); // destroy on close
    with_session(fake_agent_options(fake.port()), [&](session& s, client&) -> asio::awaitable<void> {
        co_await expect_started(s);
        const auto first_deadline = s.deadline();
        BOOST_TEST_REQUIRE(co_await eventually([&] { return fake.requests().size() == 2u; }, 1500ms));
        const auto renew_seen = clock_type::now(); // not earlier than the renewal's send time
        BOOST_TEST_REQUIRE(co_await eventually([&] { return s.deadline() != first_deadline; }, 1000ms));
        const auto reply_seen = clock_type::now();
        BOOST_TEST(ms_between(renew_seen, reply_seen) >= 200); // the reply was late indeed
        BOOST_TEST(ms_between(renew_seen, s.deadline()) <= 950, // 1 s - 50 ms margin
                   "deadline " << ms_between(renew_seen, s.deadline()) << " ms after the renewal was seen");
        BOOST_TEST(ms_between(renew_seen, s.deadline()) >= 700);
        co_await expect_closed(s);
    });
    const auto reqs = fake.requests();
    BOOST_TEST_REQUIRE(reqs.size() == 3u);
    BOOST_TEST(reqs[1].target == "/v1/session/renew/" + id1);
}

BOOST_AUTO_TEST_CASE(concurrent_starts_share_one_creation)
{
    fake_agent fake;
    fake.push(fake_step::respond(create_reply(id1), 100ms));
    fake.push(fake_step::respond(fake_agent::reply(200, "true"))); // destroy on close
    int completed = 0; // outside the coroutine frame: the handlers write to them
    std::vector<std::string> ids;
    with_session(fake_agent_options(fake.port()), [&](session& s, client&) -> asio::awaitable<void> {
        for (int i = 0; i < 3; ++i)
            s.start([&](error_code ec, session_id id) {
                BOOST_TEST(!ec, ec.message());
                ids.push_back(id.str());
                ++completed;
            });
        BOOST_TEST_REQUIRE(co_await eventually([&] { return completed == 3; }, 2s));
        BOOST_TEST(s.generation() == 1u);
        co_await expect_closed(s);
    });
    for (const auto& id : ids)
        BOOST_TEST(id == id1);
    BOOST_TEST(count_targets(fake.requests(), "/v1/session/create") == 1u);
}

BOOST_AUTO_TEST_CASE(concurrent_renew_now_calls_share_one_renewal_and_a_cancelled_one_leaves_it_to_the_others)
{
    fake_agent fake;
    fake.push(fake_step::respond(create_reply(id1)));
    // The one renewal: slow, and a 404, so everyone learns the session is gone.
    fake.push(fake_step::respond(fake_agent::consul_error(404, "Session id '" + id1 + "' not found"), 150ms));
    fake.set_default(fake_step::respond(fake_agent::reply(200, "true")));
    std::vector<error_code> results; // outside the coroutine frame: the handlers write to it
    with_session(fake_agent_options(fake.port()), [&](session& s, client&) -> asio::awaitable<void> {
        co_await expect_started(s);
        asio::cancellation_signal stop_first;
        s.renew_now(asio::bind_cancellation_slot(stop_first.slot(), [&](error_code ec) { results.push_back(ec); }));
        for (int i = 0; i < 2; ++i)
            s.renew_now([&](error_code ec) { results.push_back(ec); });
        co_await sleep_for(20ms); // time-based: the renewal is in flight (the fake answers after 150 ms)
        stop_first.emit(asio::cancellation_type::terminal); // the first caller gives up; the renewal goes on
        BOOST_TEST_REQUIRE(co_await eventually([&] { return results.size() == 3; }, 2s));
        BOOST_TEST(!s.is_live());
    });
    BOOST_TEST_REQUIRE(results.size() == 3u);
    BOOST_TEST(results[0] == asio::error::operation_aborted, results[0].message()); // the cancelled wait, at once
    BOOST_TEST(results[1] == errc::session_invalidated, results[1].message());
    BOOST_TEST(results[2] == errc::session_invalidated, results[2].message());
    BOOST_TEST(count_targets(fake.requests(), "/v1/session/renew/" + id1) == 1u);
}

BOOST_AUTO_TEST_CASE(a_cancelled_start_lets_the_creation_finish_for_the_next_caller)
{
    fake_agent fake;
    fake.push(fake_step::respond(create_reply(id1), 300ms));
    fake.push(fake_step::respond(fake_agent::reply(200, "true"))); // destroy on close
    asio::cancellation_signal signal; // outside the coroutine frame, like the handler's state
    bool done = false;
    error_code first_ec;
    with_session(fake_agent_options(fake.port()), [&](session& s, client&) -> asio::awaitable<void> {
        s.start(asio::bind_cancellation_slot(signal.slot(), [&](error_code ec, session_id) {
            first_ec = ec;
            done = true;
        }));
        BOOST_TEST_REQUIRE(co_await eventually([&] { return fake.requests().size() == 1u; }, 1s));
        const auto t0 = clock_type::now();
        signal.emit(asio::cancellation_type::terminal);
        BOOST_TEST_REQUIRE(co_await eventually([&] { return done; }, 1s));
        BOOST_TEST(ms_since(t0) < 150);
        BOOST_TEST(first_ec == asio::error::operation_aborted, first_ec.message());
        const auto id = co_await expect_started(s); // joins the creation still in flight
        BOOST_TEST(id.str() == id1);
        BOOST_TEST(s.generation() == 1u);
        co_await expect_closed(s);
    });
    BOOST_TEST(count_targets(fake.requests(), "/v1/session/create") == 1u);
}

BOOST_AUTO_TEST_CASE(after_a_loss_start_creates_a_new_session)
{
    fake_agent fake;
    fake.push(fake_step::respond(create_reply(id1)));
    fake.push(fake_step::respond(fake_agent::consul_error(404, "Session id not found")));
    fake.push(fake_step::respond(create_reply(id2)));
    fake.push(fake_step::respond(fake_agent::reply(200, "true"))); // destroy on close
    with_session(fake_agent_options(fake.port()), [&](session& s, client&) -> asio::awaitable<void> {
        const auto first = co_await expect_started(s);
        BOOST_TEST(first.str() == id1);
        BOOST_TEST(s.generation() == 1u);
        auto [lec] = co_await s.lost(tuple_awaitable);
        BOOST_TEST(lec == errc::session_invalidated, lec.message());
        BOOST_TEST(s.generation() == 1u);
        const auto second = co_await expect_started(s);
        BOOST_TEST(second.str() == id2);
        BOOST_TEST(s.generation() == 2u);
        BOOST_TEST(s.is_live());
        BOOST_TEST_REQUIRE(s.id().has_value());
        BOOST_TEST(s.id()->str() == id2);
        co_await expect_closed(s);
    });
    expect_targets(fake.requests(), {"/v1/session/create", "/v1/session/renew/" + id1, "/v1/session/create",
                                     "/v1/session/destroy/" + id2});
}

BOOST_AUTO_TEST_CASE(create_answered_500_serf_health_critical_is_retried)
{
    fake_agent fake;
    fake.push(fake_step::respond(fake_agent::consul_error(500, "Check 'serfHealth' is in critical state")));
    fake.push(fake_step::respond(create_reply(id1)));
    fake.push(fake_step::respond(fake_agent::reply(200, "true")));
    with_session(fake_agent_options(fake.port()), [&](session& s, client&) -> asio::awaitable<void> {
        const auto id = co_await expect_started(s);
        BOOST_TEST(id.str() == id1);
        BOOST_TEST(s.is_live());
        BOOST_TEST(s.generation() == 1u);
        co_await expect_closed(s);
    });
    expect_targets(fake.requests(), {"/v1/session/create", "/v1/session/create", "/v1/session/destroy/" + id1});
}

BOOST_AUTO_TEST_CASE(create_answered_403_is_not_retried)
{
    fake_agent fake;
    fake.push(fake_step::respond(fake_agent::consul_error(403, "Permission denied")));
    fake.set_default(fake_step::respond(create_reply(id1)));
    with_session(fake_agent_options(fake.port()), [&](session& s, client&) -> asio::awaitable<void> {
        auto [ec, id] = co_await s.start(tuple_awaitable);
        BOOST_TEST(ec == make_http_error(403), ec.message());
        BOOST_TEST(id.empty());
        BOOST_TEST(!s.is_live());
        BOOST_TEST(s.generation() == 0u);
    });
    BOOST_TEST(fake.requests().size() == 1u);
}

BOOST_AUTO_TEST_CASE(close_destroys_the_session_and_ends_lost_waiters_with_not_held)
{
    fake_agent fake;
    fake.push(fake_step::respond(create_reply(id1)));
    fake.push(fake_step::respond(fake_agent::reply(200, "true\n")));
    bool lost_done = false; // outside the coroutine frame, which the pending handler must not outlive
    error_code lost_ec;
    with_session(fake_agent_options(fake.port()), [&](session& s, client&) -> asio::awaitable<void> {
        co_await expect_started(s);
        s.lost([&](error_code e) {
            lost_ec = e;
            lost_done = true;
        });
        co_await expect_closed(s);
        BOOST_TEST(!s.is_live());
        BOOST_TEST(!s.id().has_value());
        BOOST_TEST_REQUIRE(co_await eventually([&] { return lost_done; }, 500ms));
        BOOST_TEST(lost_ec == errc::not_held, lost_ec.message());
        co_await sleep_for(700ms); // past TTL/2: a renewal after close would show up
    });
    const auto reqs = fake.requests();
    BOOST_TEST_REQUIRE(reqs.size() == 2u);
    BOOST_TEST(reqs[1].method == "PUT");
    BOOST_TEST(reqs[1].target == "/v1/session/destroy/" + id1);
}

BOOST_AUTO_TEST_CASE(start_with_a_tls_setting_that_fails_before_any_io_completes_with_the_error)
{
    // The creation fails synchronously inside co_spawn; start() must still complete, not wait forever.
    auto o = fake_agent_options(1);
    o.use_tls = true;
    o.tls_ca_file = "/nonexistent/ca.pem";
    with_session(
        o,
        [&](session& s, client&) -> asio::awaitable<void> {
            auto [ec, id] = co_await s.start(tuple_awaitable);
            BOOST_TEST(ec == errc::invalid_config, ec.message());
            BOOST_TEST(!s.is_live());
        },
        one_second_session(), 3s);
}

// A creation whose reply arrives after close() or client.cancel() must not bring the session back:
// the new session is destroyed and start() fails.
void stopped_during_creation(bool by_client_cancel)
{
    fake_agent fake;
    fake.push(fake_step::respond(create_reply(id1), 300ms)); // the reply comes after the stop
    fake.set_default(fake_step::respond(fake_agent::reply(200, "true\n")));
    with_session(fake_agent_options(fake.port()), [&](session& s, client& c) -> asio::awaitable<void> {
        error_code start_ec;
        bool started = false;
        s.start([&](error_code ec, session_id) {
            start_ec = ec;
            started = true;
        });
        co_await sleep_for(100ms); // the create request is in flight
        if (by_client_cancel)
            c.cancel();
        else
            co_await s.close();
        BOOST_TEST_REQUIRE(co_await eventually([&] { return started; }, 2s));
        BOOST_TEST(start_ec.failed());
        BOOST_TEST(!s.is_live());
        BOOST_TEST(!s.id().has_value());
        BOOST_TEST_REQUIRE(co_await eventually([&] { return count_targets(fake.requests(), "/v1/session/destroy/" + id1) == 1; }, 2s));
        co_await sleep_for(700ms); // past TTL/2: a renewal would show up
        BOOST_TEST(count_targets(fake.requests(), "/v1/session/renew/") == 0u);
    });
}

BOOST_AUTO_TEST_CASE(close_during_creation_destroys_the_new_session_instead_of_keeping_it)
{
    stopped_during_creation(false);
}

BOOST_AUTO_TEST_CASE(client_cancel_during_creation_destroys_the_new_session_instead_of_keeping_it)
{
    stopped_during_creation(true);
}

BOOST_AUTO_TEST_CASE(a_session_bound_to_checks_is_trusted_only_for_its_lock_delay)
{
    // TTL 10 s with serfHealth and lock-delay 1 s: Consul may invalidate it by the check at any
    // moment and hand its keys out 1 s later, so without a renewal it is lost after about 1 s.
    fake_agent fake;
    fake.push(fake_step::respond(create_reply(id1)));
    fake.set_default(fake_step::never_reply());
    session_options so;
    so.name = "x";
    so.ttl = 10s;
    so.lock_delay = 1s; // node_checks unset: the agent binds serfHealth
    with_session(
        fake_agent_options(fake.port()),
        [&](session& s, client&) -> asio::awaitable<void> {
            const auto t0 = clock_type::now();
            co_await expect_started(s);
            BOOST_TEST((s.deadline() - t0 <= 1s));
            auto [lec] = co_await s.lost(tuple_awaitable);
            BOOST_TEST(lec == errc::session_expired, lec.message());
            const auto after = ms_since(t0);
            BOOST_TEST(after >= 900);
            BOOST_TEST(after < 1300);
        },
        so);
}

// A session made with request options carries their datacenter, namespace, partition and token on every request
// of its own: create, scheduled renewal, renew_now(), close()'s destroy and the background destroy after
// client::cancel(); never the per-call timeout or diagnostics sink.
BOOST_AUTO_TEST_CASE(create_renew_and_destroy_carry_the_sessions_request_options)
{
    fake_agent fake;
    fake.push(fake_step::respond(create_reply(id1)));
    fake.push(fake_step::respond(renew_reply(id1, "1s")));                // scheduled renewal
    fake.push(fake_step::respond(renew_reply(id1, "1s")));                // renew_now()
    fake.push(fake_step::respond(fake_agent::reply(200, "true\n")));      // close()
    fake.push(fake_step::respond(create_reply(id2)));
    fake.push(fake_step::respond(fake_agent::reply(200, "true\n")));     // the background destroy of id2
    auto o = fake_agent_options(fake.port());
    o.datacenter = "client-dc"; // the client's defaults lose to the session's own options
    o.token = "client-token";
    diagnostics diag;
    request_options request;
    request.datacenter = "dc2";
    request.ns = "team-a";
    request.partition = "part-b";
    request.token = "session-token";
    request.timeout = 1ms; // per call: a session keeps no deadline of a call
    request.diag = &diag;
    with_client(o, [&](client& c, asio::io_context&) -> asio::awaitable<void> {
        session s(c, one_second_session(), request);
        BOOST_TEST(s.request().datacenter == "dc2");
        BOOST_TEST(s.request().token == "session-token");
        BOOST_TEST(s.request().timeout.count() == 0);
        BOOST_TEST(s.request().diag == nullptr);
        co_await expect_started(s);
        BOOST_TEST_REQUIRE(co_await eventually([&] { return fake.requests().size() >= 2; }, 1500ms));
        auto [nec] = co_await s.renew_now(tuple_awaitable);
        BOOST_TEST(!nec, nec.message());
        co_await expect_closed(s);
        co_await expect_started(s); // id2, destroyed in the background by client::cancel()
        c.cancel();
        BOOST_TEST_REQUIRE(co_await eventually([&] { return fake.requests().size() >= 6; }, 1000ms));
        co_await sleep_for(100ms); // room for a (wrong) extra request to show up
    }, 5s);
    const auto reqs = fake.requests();
    const std::string query = "?dc=dc2&ns=team-a&partition=part-b";
    expect_targets(reqs,
                   {"/v1/session/create" + query, "/v1/session/renew/" + id1 + query,
                    "/v1/session/renew/" + id1 + query, "/v1/session/destroy/" + id1 + query,
                    "/v1/session/create" + query, "/v1/session/destroy/" + id2 + query});
    for (const auto& r : reqs) {
        BOOST_TEST_CONTEXT(r.method << " " << r.target)
        {
            BOOST_TEST(r.method == "PUT");
            const auto token = r.headers.find("x-consul-token");
            BOOST_TEST_REQUIRE((token != r.headers.end()));
            BOOST_TEST(token->second == "session-token");
        }
    }
    BOOST_TEST(diag.http_status == 0u); // never written: the sink was the constructor's call's only
}

BOOST_AUTO_TEST_SUITE_END()
