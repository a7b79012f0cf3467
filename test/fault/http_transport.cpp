// The client's HTTP layer against the scripted fake agent (TESTING.md, "HTTP/JSON bad input", transport and header
// cases): retry classification (429 / 5xx / 403), deadlines (never answered, slowloris headers), connection faults
// (RST mid-body, FIN before the reply, refused), the keep-alive pool, and malformed responses. Every case runs under
// run_async's hard deadline, completes through its handler (run_op / with_client require it), and checks what the
// fake agent recorded where the request count or the connection proves the point.

#include <colock/consul/client.hpp>

#include "async_test.hpp"
#include "fake_agent.hpp"
#include "fault_helpers.hpp"
#include "test_options.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <tuple>
#include <memory>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace colock;
using namespace colock::consul;
using namespace colock::test;
using namespace std::chrono_literals;

namespace {

// One KV entry as Consul encodes it ("dmFsdWU=" is "value").
std::string entry_json(const std::string& key, std::uint64_t modify_index = 5)
{
    return R"([{"LockIndex":0,"Key":")" + key + R"(","Flags":0,"Value":"dmFsdWU=","CreateIndex":3,"ModifyIndex":)" +
           std::to_string(modify_index) + "}]";
}

// fake_agent_options(port) with a single attempt (each failure is final).
client_options single_attempt(std::uint16_t port)
{
    auto o = fake_agent_options(port);
    o.max_attempts = 1;
    return o;
}

// One kv_get("k", q) on a client with `o`, under run_async's deadline; requires that it completed.
op_result<kv_get_result> get_k(const client_options& o, query_options q = {})
{
    return run_op(o, [&](client& c) { return c.kv_get("k", q, tuple_awaitable); });
}

// Two kv_get("k") in a row on one client with `o`, `pause` apart (time for a FIN to reach a pooled connection).
std::array<op_result<kv_get_result>, 2> two_gets(const client_options& o, std::chrono::milliseconds pause = 0ms)
{
    std::array<op_result<kv_get_result>, 2> out;
    with_client(o, [&](client& c, asio::io_context&) -> asio::awaitable<void> {
        for (std::size_t i = 0; i < out.size(); ++i) {
            if (i > 0 && pause > 0ms)
                co_await sleep_for(pause);
            auto [ec, r] = co_await c.kv_get("k", query_options{}, tuple_awaitable);
            out[i].ec = ec;
            out[i].value = std::move(r);
        }
    });
    return out;
}

// A failure the client noticed by itself (not a timeout), with no result.
void expect_prompt_error(const op_result<kv_get_result>& r)
{
    BOOST_TEST(r.ec.failed());
    BOOST_TEST(r.ec != errc::request_timeout, r.ec.message());
    BOOST_TEST(!r.value.entry.has_value());
}

// A port on 127.0.0.1 on which nothing listens (bound once to get a free number, then closed).
std::uint16_t closed_port()
{
    asio::io_context ioc;
    asio::ip::tcp::acceptor a(ioc, asio::ip::tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0));
    const auto port = a.local_endpoint().port();
    a.close();
    return port;
}

// Collects the client's log lines (debug and up) to count retries that leave no trace on a server.
struct log_capture {
    std::shared_ptr<std::vector<std::string>> lines = std::make_shared<std::vector<std::string>>();

    colock::logger logger() const
    {
        colock::logger l;
        l.min_level = colock::logger::level::debug;
        l.sink = [lines = lines](colock::logger::level, std::string_view line) { lines->emplace_back(line); };
        return l;
    }
    std::size_t count(std::string_view needle) const
    {
        std::size_t n = 0;
        for (const auto& l : *lines)
            n += l.find(needle) != std::string::npos;
        return n;
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(retry_classification)

BOOST_AUTO_TEST_CASE(read_answered_500_no_cluster_leader_is_retried_and_succeeds)
{
    fake_agent fake;
    fake.push(fake_step::respond(fake_agent::consul_error(500, "No cluster leader")));
    fake.push(fake_step::respond(fake_agent::consul_reply(entry_json("k"), 42)));
    const auto r = get_k(fake_agent_options(fake.port()));
    BOOST_TEST(!r.ec, r.ec.message());
    BOOST_TEST_REQUIRE(r.value.entry.has_value());
    BOOST_TEST(r.value.entry->value == "value");
    BOOST_TEST(r.value.meta.index == 42u);
    const auto reqs = fake.requests();
    expect_targets(reqs, {"/v1/kv/k", "/v1/kv/k"});
    BOOST_TEST(reqs[0].method == "GET");
    BOOST_TEST(fake.steps_left() == 0u);
}

BOOST_AUTO_TEST_CASE(an_ipv6_literal_host_is_reached_and_bracketed_in_the_host_header)
{
    fake_agent fake("::1");
    fake.push(fake_step::respond(fake_agent::consul_reply(entry_json("k"), 5)));
    auto o = fake_agent_options(fake.port());
    o.host = "::1";
    const auto r = get_k(o);
    BOOST_TEST(!r.ec, r.ec.message());
    const auto reqs = fake.requests();
    BOOST_TEST_REQUIRE(reqs.size() == 1u);
    BOOST_TEST(reqs[0].headers.at("host") == "[::1]:" + std::to_string(fake.port())); // RFC 9110 4.2.3
}

BOOST_AUTO_TEST_CASE(a_hostname_goes_into_the_host_header_as_it_is)
{
    fake_agent fake;
    fake.push(fake_step::respond(fake_agent::consul_reply(entry_json("k"), 5)));
    auto o = fake_agent_options(fake.port());
    o.host = "localhost";
    const auto r = get_k(o);
    BOOST_TEST(!r.ec, r.ec.message());
    const auto reqs = fake.requests();
    BOOST_TEST_REQUIRE(reqs.size() == 1u);
    BOOST_TEST(reqs[0].headers.at("host") == "localhost:" + std::to_string(fake.port()));
}

BOOST_AUTO_TEST_CASE(read_answered_429_is_retried_and_succeeds)
{
    fake_agent fake;
    fake.push(fake_step::respond(fake_agent::consul_error(429, "Your IP is issuing too many concurrent connections")));
    fake.push(fake_step::respond(fake_agent::consul_reply(entry_json("k"), 7)));
    const auto r = get_k(fake_agent_options(fake.port()));
    BOOST_TEST(!r.ec, r.ec.message());
    BOOST_TEST(r.value.entry.has_value());
    BOOST_TEST(r.value.meta.index == 7u);
    BOOST_TEST(fake.requests().size() == 2u);
    BOOST_TEST(fake.steps_left() == 0u);
}

BOOST_AUTO_TEST_CASE(read_answered_403_is_not_retried_and_reports_the_server_text)
{
    fake_agent fake;
    fake.push(fake_step::respond(fake_agent::consul_error(403, "rpc error making call: Permission denied")));
    // A retry would get this success and make the test fail.
    fake.push(fake_step::respond(fake_agent::consul_reply(entry_json("k"), 7)));
    diagnostics diag;
    query_options q;
    q.diag = &diag;
    const auto r = get_k(fake_agent_options(fake.port()), q);
    BOOST_TEST(r.ec == make_http_error(403), r.ec.message());
    BOOST_TEST(&r.ec.category() == &http_category());
    BOOST_TEST(r.ec.value() == 403);
    BOOST_TEST(!is_retryable(r.ec));
    BOOST_TEST(!r.value.entry.has_value());
    BOOST_TEST(diag.http_status == 403u);
    BOOST_TEST(diag.server_message.find("Permission denied") != std::string::npos, diag.server_message);
    BOOST_TEST(!diag.client_message.empty());
    BOOST_TEST(fake.requests().size() == 1u);
    BOOST_TEST(fake.steps_left() == 1u);
}

BOOST_AUTO_TEST_CASE(persistent_500_gives_up_after_max_attempts_with_the_status)
{
    fake_agent fake;
    fake.set_default(fake_step::respond(fake_agent::consul_error(500, "No cluster leader")));
    diagnostics diag;
    query_options q;
    q.diag = &diag;
    const auto r = get_k(fake_agent_options(fake.port()), q); // max_attempts 3
    BOOST_TEST(r.ec == make_http_error(500), r.ec.message());
    BOOST_TEST(is_retryable(r.ec));
    BOOST_TEST(diag.server_message == "No cluster leader");
    BOOST_TEST(fake.requests().size() == 3u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(deadlines)

BOOST_AUTO_TEST_CASE(reply_that_never_comes_times_out_after_request_timeout_single_attempt)
{
    fake_agent fake;
    fake.push(fake_step::never_reply());
    const auto r = get_k(single_attempt(fake.port()));
    BOOST_TEST(r.ec == errc::request_timeout, r.ec.message());
    BOOST_TEST(r.ec == condition::timeout);
    BOOST_TEST(!r.value.entry.has_value());
    BOOST_TEST(r.ms >= 490, "elapsed " << r.ms << " ms");
    BOOST_TEST(r.ms < 1200, "elapsed " << r.ms << " ms");
    BOOST_TEST(fake.requests().size() == 1u);
}

BOOST_AUTO_TEST_CASE(each_attempt_has_its_own_deadline_and_attempts_are_bounded)
{
    fake_agent fake;
    fake.set_default(fake_step::never_reply());
    auto o = fake_agent_options(fake.port());
    o.max_attempts = 2;
    o.request_timeout = 300ms;
    const auto r = get_k(o);
    BOOST_TEST(r.ec == errc::request_timeout, r.ec.message());
    BOOST_TEST(r.ms >= 590, "elapsed " << r.ms << " ms"); // two full attempts
    BOOST_TEST(r.ms < 1500, "elapsed " << r.ms << " ms");
    const auto reqs = fake.requests();
    BOOST_TEST_REQUIRE(reqs.size() == 2u);
    BOOST_TEST(reqs[0].connection != reqs[1].connection); // a timed-out connection is never reused
}

BOOST_AUTO_TEST_CASE(slowloris_headers_hit_the_total_deadline_not_a_per_read_timeout)
{
    fake_agent fake;
    // One byte every 100 ms: every single read makes progress well within any per-read timeout.
    fake.push(fake_step::trickle(fake_agent::consul_reply(entry_json("k"), 3), 100ms));
    auto o = single_attempt(fake.port());
    o.request_timeout = 500ms;
    const auto r = get_k(o);
    BOOST_TEST(r.ec == errc::request_timeout, r.ec.message());
    BOOST_TEST(!r.value.entry.has_value());
    BOOST_TEST(r.ms >= 490, "elapsed " << r.ms << " ms");
    BOOST_TEST(r.ms < 1500, "elapsed " << r.ms << " ms");
    BOOST_TEST(fake.requests().size() == 1u);
}

BOOST_AUTO_TEST_CASE(blocking_read_deadline_is_wait_plus_jitter_plus_slack_not_request_timeout)
{
    fake_agent fake;
    fake.push(fake_step::never_reply());
    auto o = single_attempt(fake.port());
    o.request_timeout = 3s; // must not apply to a blocking read
    o.blocking_slack = 300ms;
    const auto r = get_k(o, query_options::blocking(9, 200ms));
    BOOST_TEST(r.ec == errc::request_timeout, r.ec.message());
    // 200 ms + 200/16 ms + 300 ms = 512 ms
    BOOST_TEST(r.ms >= 505, "elapsed " << r.ms << " ms");
    BOOST_TEST(r.ms < 1500, "elapsed " << r.ms << " ms");
    expect_targets(fake.requests(), {"/v1/kv/k?index=9&wait=200ms"});
}

BOOST_AUTO_TEST_CASE(blocking_read_longer_than_request_timeout_is_not_cut_short)
{
    fake_agent fake;
    fake.push(fake_step::respond(fake_agent::consul_reply(entry_json("k", 10), 10), 700ms)); // the server holds it
    auto o = single_attempt(fake.port());
    o.request_timeout = 300ms;
    o.blocking_slack = 300ms;
    const auto r = get_k(o, query_options::blocking(9, 800ms));
    BOOST_TEST(!r.ec, r.ec.message());
    BOOST_TEST(r.value.meta.index == 10u);
    BOOST_TEST(fake.requests().size() == 1u);
}

BOOST_AUTO_TEST_CASE(client_cancel_abandons_a_request_in_flight_at_once)
{
    fake_agent fake;
    fake.push(fake_step::never_reply());
    fake.push(fake_step::respond(fake_agent::consul_reply(entry_json("k"), 4)));
    bool done = false; // outside the coroutine frame: the pending handler writes to it
    error_code ec1;
    auto o = fake_agent_options(fake.port());
    o.request_timeout = 3s;
    with_client(o, [&](client& c, asio::io_context&) -> asio::awaitable<void> {
        c.kv_get("k", query_options{}, [&](error_code e, kv_get_result) {
            ec1 = e;
            done = true;
        });
        while (fake.requests().empty())
            co_await sleep_for(5ms);
        const auto t0 = clock_type::now();
        c.cancel();
        while (!done && ms_since(t0) < 1000)
            co_await sleep_for(5ms);
        BOOST_TEST_REQUIRE(done);
        BOOST_TEST(ms_since(t0) < 300);
        BOOST_TEST((ec1 == asio::error::operation_aborted || ec1 == errc::client_closed), ec1.message());
        // The client is usable afterwards, on a new connection.
        auto [ec2, r2] = co_await c.kv_get("k", query_options{}, tuple_awaitable);
        BOOST_TEST(!ec2, ec2.message());
        BOOST_TEST(r2.meta.index == 4u);
    });
    const auto reqs = fake.requests();
    BOOST_TEST_REQUIRE(reqs.size() == 2u);
    BOOST_TEST(reqs[1].connection != reqs[0].connection);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(connection_pool)

BOOST_AUTO_TEST_CASE(requests_waiting_for_the_one_slot_get_it_in_arrival_order)
{
    fake_agent fake;
    fake.push(fake_step::respond(fake_agent::consul_reply(entry_json("first"), 2), 200ms)); // holds the slot
    for (int i = 1; i <= 4; ++i)
        fake.push(fake_step::respond(fake_agent::consul_reply(entry_json("w" + std::to_string(i)), 2 + i)));
    auto o = fake_agent_options(fake.port());
    o.max_connections = 1;
    o.reserved_connections = 0;
    std::vector<std::string> completed;
    with_client(o, [&](client& c, asio::io_context&) -> asio::awaitable<void> {
        auto record = [&](std::string key) {
            return [&completed, key](error_code ec, kv_get_result) {
                completed.push_back(ec ? key + ": " + ec.message() : key);
            };
        };
        c.kv_get("first", query_options{}, record("first"));
        auto first_arrived = [&] { return !fake.requests().empty(); };
        const bool arrived = co_await eventually(first_arrived, 2000ms);
        BOOST_TEST_REQUIRE(arrived, "the first request never reached the fake agent");
        for (int i = 1; i <= 4; ++i)
            c.kv_get("w" + std::to_string(i), query_options{}, record("w" + std::to_string(i)));
        auto all_done = [&] { return completed.size() == 5u; };
        const bool finished = co_await eventually(all_done, 3000ms);
        BOOST_TEST(finished, "only " << completed.size() << " of 5 requests completed");
    });
    const std::vector<std::string> in_order{"first", "w1", "w2", "w3", "w4"};
    BOOST_TEST(completed == in_order, boost::test_tools::per_element());
    expect_targets(fake.requests(), {"/v1/kv/first", "/v1/kv/w1", "/v1/kv/w2", "/v1/kv/w3", "/v1/kv/w4"});
    BOOST_TEST(fake.connections_accepted() == 1u); // handed from one request to the next, kept alive
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(connection_faults)

BOOST_AUTO_TEST_CASE(reset_mid_body_on_a_get_is_retried_on_a_new_connection)
{
    fake_agent fake;
    const auto full = fake_agent::consul_reply(entry_json("k"), 11);
    fake.push(fake_step::reset(full, full.size() - 10)); // headers and most of the body, then RST
    fake.push(fake_step::respond(full));
    const auto r = get_k(fake_agent_options(fake.port()));
    BOOST_TEST(!r.ec, r.ec.message());
    BOOST_TEST_REQUIRE(r.value.entry.has_value());
    BOOST_TEST(r.value.entry->value == "value");
    BOOST_TEST(r.value.meta.index == 11u);
    expect_connections(fake.requests(), {1, 2});
    BOOST_TEST(fake.connections_accepted() == 2u);
}

BOOST_AUTO_TEST_CASE(fin_before_the_reply_on_a_get_is_retried)
{
    // The keep-alive race as the client sees it: the server closes the connection as the request arrives.
    fake_agent fake;
    fake.push(fake_step::close_before_reply());
    fake.push(fake_step::respond(fake_agent::consul_reply(entry_json("k"), 12)));
    const auto r = get_k(fake_agent_options(fake.port()));
    BOOST_TEST(!r.ec, r.ec.message());
    BOOST_TEST(r.value.entry.has_value());
    BOOST_TEST(r.value.meta.index == 12u);
    BOOST_TEST(fake.requests().size() == 2u);
    BOOST_TEST(fake.connections_accepted() == 2u);
}

BOOST_AUTO_TEST_CASE(put_whose_connection_closes_before_the_reply_is_indeterminate_and_sent_once)
{
    fake_agent fake;
    fake.push(fake_step::close_before_reply());
    // A (forbidden) retry would get this and succeed.
    fake.set_default(fake_step::respond(fake_agent::reply(200, "true")));
    diagnostics diag;
    write_options w;
    w.diag = &diag;
    const auto r = run_op(fake_agent_options(fake.port()), [&](client& c) {
        return c.kv_put("lock/a", "payload", kv_put_options{}, w, tuple_awaitable);
    });
    BOOST_TEST(r.ec == errc::indeterminate_write, r.ec.message());
    BOOST_TEST(!r.value);
    BOOST_TEST(!diag.client_message.empty());
    const auto reqs = fake.requests();
    expect_targets(reqs, {"/v1/kv/lock/a?flags=0"});
    BOOST_TEST(reqs[0].method == "PUT");
    BOOST_TEST(reqs[0].body == "payload");
}

// A PUT with `put` whose first attempt ends without a reply (`fault`): indeterminate, and never re-sent although a
// retry would succeed. Returns how long the put took.
long long expect_put_indeterminate_and_sent_once(fake_step fault, kv_put_options put)
{
    fake_agent fake;
    fake.push(std::move(fault));
    fake.set_default(fake_step::respond(fake_agent::reply(200, "true")));
    const auto r = run_op(fake_agent_options(fake.port()),
                          [&](client& c) { return c.kv_put("lock/a", "v", put, write_options{}, tuple_awaitable); });
    BOOST_TEST(r.ec == errc::indeterminate_write, r.ec.message());
    BOOST_TEST(!r.value);
    BOOST_TEST(fake.requests().size() == 1u);
    return r.ms;
}

BOOST_AUTO_TEST_CASE(put_reset_before_the_reply_is_indeterminate_and_sent_once)
{
    expect_put_indeterminate_and_sent_once(fake_step::reset(), kv_put_options::with_cas(0));
}

BOOST_AUTO_TEST_CASE(put_that_times_out_is_indeterminate_and_sent_once)
{
    const auto elapsed = expect_put_indeterminate_and_sent_once(fake_step::never_reply(), kv_put_options{});
    BOOST_TEST(elapsed >= 490);
    BOOST_TEST(elapsed < 1200);
}

BOOST_AUTO_TEST_CASE(put_to_a_refused_port_is_retried_and_ends_in_a_transport_error)
{
    log_capture logs;
    diagnostics diag;
    write_options w;
    w.diag = &diag;
    auto o = fake_agent_options(closed_port());
    o.max_attempts = 3;
    const auto r = run_op(
        o, [&](client& c) { return c.kv_put("lock/a", "v", kv_put_options{}, w, tuple_awaitable); }, logs.logger());
    BOOST_TEST(r.ec == asio::error::connection_refused, r.ec.message());
    BOOST_TEST(r.ec != errc::indeterminate_write);
    BOOST_TEST(is_retryable(r.ec));
    BOOST_TEST(!r.value);
    BOOST_TEST(r.ms < 1000);
    BOOST_TEST(diag.http_status == 0u);
    // Provably never sent, so retried: attempts 1 and 2 failed and were retried, attempt 3 was the last.
    BOOST_TEST(logs.count("retrying") == 2u);
    BOOST_TEST(logs.count("outcome unknown") == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(keep_alive_pool)

BOOST_AUTO_TEST_CASE(two_sequential_gets_share_one_connection)
{
    fake_agent fake;
    fake.push(fake_step::respond(fake_agent::consul_reply(entry_json("k"), 5)));
    fake.push(fake_step::respond(fake_agent::consul_reply(entry_json("k"), 6)));
    const auto [r1, r2] = two_gets(fake_agent_options(fake.port()));
    BOOST_TEST(!r1.ec, r1.ec.message());
    BOOST_TEST(!r2.ec, r2.ec.message());
    BOOST_TEST(r1.value.meta.index == 5u);
    BOOST_TEST(r2.value.meta.index == 6u);
    expect_connections(fake.requests(), {1, 1});
    BOOST_TEST(fake.connections_accepted() == 1u);
}

BOOST_AUTO_TEST_CASE(pooled_connection_closed_by_the_server_is_not_used_for_the_next_get)
{
    fake_agent fake;
    // The reply says keep-alive, but the server closes right after it (an idle timeout on the agent's side).
    fake.push(fake_step::respond_and_close(fake_agent::consul_reply(entry_json("k"), 5)));
    fake.push(fake_step::respond(fake_agent::consul_reply(entry_json("k"), 6)));
    // 100 ms apart: the FIN arrives while the connection sits in the pool.
    const auto [r1, r2] = two_gets(fake_agent_options(fake.port()), 100ms);
    BOOST_TEST(!r1.ec, r1.ec.message());
    BOOST_TEST(!r2.ec, r2.ec.message());
    BOOST_TEST(r2.value.entry.has_value());
    BOOST_TEST(r2.value.meta.index == 6u);
    expect_connections(fake.requests(), {1, 2});
    BOOST_TEST(fake.connections_accepted() == 2u);
}

BOOST_AUTO_TEST_CASE(pooled_connection_closed_by_the_server_does_not_make_a_put_indeterminate)
{
    fake_agent fake;
    fake.push(fake_step::respond_and_close(fake_agent::consul_reply(entry_json("k"), 5)));
    fake.push(fake_step::respond(fake_agent::reply(200, "true\n")));
    with_client(fake_agent_options(fake.port()), [&](client& c, asio::io_context&) -> asio::awaitable<void> {
        auto [ec1, r1] = co_await c.kv_get("k", query_options{}, tuple_awaitable);
        BOOST_TEST(!ec1, ec1.message());
        co_await sleep_for(100ms);
        auto [ec2, ok] = co_await c.kv_put("k", "v", kv_put_options{}, write_options{}, tuple_awaitable);
        BOOST_TEST(!ec2, ec2.message());
        BOOST_TEST(ok);
    });
    const auto reqs = fake.requests();
    BOOST_TEST_REQUIRE(reqs.size() == 2u);
    BOOST_TEST(reqs[1].method == "PUT");
    BOOST_TEST(reqs[1].connection == 2u);
}

BOOST_AUTO_TEST_CASE(blocking_reads_cannot_take_the_connections_reserved_for_other_requests)
{
    fake_agent fake;
    fake.push(fake_step::never_reply()); // the first blocking read holds its connection
    fake.push(fake_step::respond(fake_agent::consul_reply(entry_json("k"), 4)));
    bool first_done = false; // outside the coroutine frame: the pending handler writes to it
    auto o = single_attempt(fake.port());
    o.max_connections = 2;
    o.reserved_connections = 1; // one for blocking reads, one kept for everything else
    o.blocking_slack = 200ms;
    with_client(o, [&](client& c, asio::io_context&) -> asio::awaitable<void> {
        c.kv_get("k", query_options::blocking(3, 2s), [&](error_code, kv_get_result) { first_done = true; });
        while (fake.requests().empty())
            co_await sleep_for(5ms);
        // A plain read still gets the reserved connection at once.
        const auto t0 = clock_type::now();
        auto [ec, r] = co_await c.kv_get("k", query_options{}, tuple_awaitable);
        BOOST_TEST(!ec, ec.message());
        BOOST_TEST(r.meta.index == 4u);
        BOOST_TEST(ms_since(t0) < 300);
        // A second blocking read has no connection to use: it waits, bounded by its own deadline, unsent.
        const auto t1 = clock_type::now();
        auto [ec2, r2] = co_await c.kv_get("k", query_options::blocking(3, 100ms), tuple_awaitable);
        BOOST_TEST(ec2 == errc::request_timeout, ec2.message());
        BOOST_TEST(ms_since(t1) >= 300); // 100 + 6 + 200 ms
        BOOST_TEST(ms_since(t1) < 1200);
        BOOST_TEST(!first_done);
    });
    BOOST_TEST(fake.requests().size() == 2u);
}

BOOST_AUTO_TEST_CASE(content_length_shorter_than_the_body_poisons_the_connection)
{
    fake_agent fake;
    const auto body = entry_json("k");
    // Content-Length covers the JSON; 5 stray bytes follow. The connection is out of step and must not be reused.
    fake.push(fake_step::respond(fake_agent::reply(200, body + "XXXXX",
                                                   {{"X-Consul-Index", "5"}, {"Content-Length", std::to_string(body.size())}})));
    fake.push(fake_step::respond(fake_agent::consul_reply(entry_json("k"), 6)));
    const auto [r1, r2] = two_gets(fake_agent_options(fake.port()));
    BOOST_TEST(!r1.ec, r1.ec.message());
    BOOST_TEST(r1.value.meta.index == 5u);
    BOOST_TEST(!r2.ec, r2.ec.message());
    BOOST_TEST(r2.value.meta.index == 6u);
    const auto reqs = fake.requests();
    BOOST_TEST_REQUIRE(reqs.size() == 2u);
    BOOST_TEST(reqs[1].connection == 2u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(malformed_responses)

BOOST_AUTO_TEST_CASE(content_length_longer_than_the_body_then_close_is_an_error)
{
    fake_agent fake;
    const auto body = entry_json("k");
    fake.push(fake_step::respond_and_close(fake_agent::reply(
        200, body, {{"X-Consul-Index", "5"}, {"Content-Length", std::to_string(body.size() + 50)}})));
    const auto r = get_k(single_attempt(fake.port()));
    expect_prompt_error(r); // the EOF is noticed, not waited out
    BOOST_TEST(r.ms < 450);
    BOOST_TEST(fake.requests().size() == 1u);
}

BOOST_AUTO_TEST_CASE(truncated_body_on_a_get_is_retried)
{
    fake_agent fake;
    const auto body = entry_json("k");
    fake.push(fake_step::respond_and_close(fake_agent::reply(
        200, body, {{"X-Consul-Index", "5"}, {"Content-Length", std::to_string(body.size() + 50)}})));
    fake.push(fake_step::respond(fake_agent::consul_reply(entry_json("k"), 6)));
    const auto r = get_k(fake_agent_options(fake.port()));
    BOOST_TEST(!r.ec, r.ec.message());
    BOOST_TEST(r.value.meta.index == 6u);
    BOOST_TEST(fake.requests().size() == 2u);
}

BOOST_AUTO_TEST_CASE(body_larger_than_max_response_bytes_is_an_error)
{
    fake_agent fake;
    const std::string big_value(8192, 'A'); // valid base64, decodes to 6 KiB
    const auto body = R"([{"LockIndex":0,"Key":"k","Flags":0,"Value":")" + big_value +
                      R"(","CreateIndex":3,"ModifyIndex":5}])";
    fake.set_default(fake_step::respond(fake_agent::consul_reply(body, 5)));
    auto o = fake_agent_options(fake.port());
    o.max_response_bytes = 1024;
    expect_prompt_error(get_k(o));
    BOOST_TEST(fake.requests().size() >= 1u);
    BOOST_TEST(fake.requests().size() <= 3u); // bounded by max_attempts
}

BOOST_AUTO_TEST_CASE(garbage_status_line_is_an_error)
{
    fake_agent fake;
    fake.set_default(fake_step::respond_and_close("HTTP/1.1 2x0 Whatever\r\nContent-Length: 2\r\n\r\n[]"));
    expect_prompt_error(get_k(fake_agent_options(fake.port())));
    BOOST_TEST(fake.requests().size() >= 1u);
    BOOST_TEST(fake.requests().size() <= 3u);
}

BOOST_AUTO_TEST_CASE(not_http_at_all_is_an_error)
{
    fake_agent fake;
    fake.set_default(fake_step::respond_and_close(std::string("\x00\xff garbage\r\n\r\n", 13)));
    expect_prompt_error(get_k(fake_agent_options(fake.port())));
}

BOOST_AUTO_TEST_CASE(http_1_0_response_read_to_close_is_parsed_and_not_reused)
{
    fake_agent fake;
    const auto body = entry_json("k");
    fake.push(fake_step::respond_and_close("HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nX-Consul-Index: 9\r\n\r\n" +
                                           body));
    fake.push(fake_step::respond(fake_agent::consul_reply(entry_json("k"), 10)));
    const auto [r1, r2] = two_gets(fake_agent_options(fake.port()));
    BOOST_TEST_REQUIRE(!r1.ec, r1.ec.message());
    BOOST_TEST_REQUIRE(r1.value.entry.has_value());
    BOOST_TEST(r1.value.entry->value == "value");
    BOOST_TEST(r1.value.meta.index == 9u);
    BOOST_TEST(!r2.ec, r2.ec.message());
    BOOST_TEST(r2.value.meta.index == 10u);
    const auto reqs = fake.requests();
    BOOST_TEST_REQUIRE(reqs.size() == 2u);
    BOOST_TEST(reqs[1].connection == 2u);
}

// Framing the parser must refuse: each gives an error, at once (no wait for the deadline) and no result.
BOOST_AUTO_TEST_CASE(malformed_framing_is_an_error_without_waiting_for_the_deadline)
{
    const std::string body = entry_json("k");
    const std::string cl = std::to_string(body.size());
    std::string many_headers = "HTTP/1.1 200 OK\r\nX-Consul-Index: 5\r\n";
    for (int i = 0; i < 10000; ++i)
        many_headers += "X-H" + std::to_string(i) + ": v\r\n";
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"two different Content-Length values",
         "HTTP/1.1 200 OK\r\nX-Consul-Index: 5\r\nContent-Length: " + cl + "\r\nContent-Length: 3\r\n\r\n" + body},
        {"negative Content-Length", "HTTP/1.1 200 OK\r\nX-Consul-Index: 5\r\nContent-Length: -3\r\n\r\n" + body},
        {"non-numeric Content-Length", "HTTP/1.1 200 OK\r\nX-Consul-Index: 5\r\nContent-Length: 1x\r\n\r\n" + body},
        {"bad chunk size", "HTTP/1.1 200 OK\r\nX-Consul-Index: 5\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + body +
                               "\r\n0\r\n\r\n"},
        {"huge chunk size", "HTTP/1.1 200 OK\r\nX-Consul-Index: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "fffffffffffffffff\r\n" + body + "\r\n0\r\n\r\n"},
        {"64 KiB header line", "HTTP/1.1 200 OK\r\nX-Consul-Index: 5\r\nX-Big: " + std::string(64 * 1024, 'a') +
                                   "\r\nContent-Length: " + cl + "\r\n\r\n" + body},
        {"garbage status code", "HTTP/1.1 2x0 OK\r\nX-Consul-Index: 5\r\nContent-Length: " + cl + "\r\n\r\n" + body},
        {"unsupported HTTP version", "HTTP/2.5 200 OK\r\nX-Consul-Index: 5\r\nContent-Length: " + cl + "\r\n\r\n" + body},
        {"10k header fields", many_headers + "Content-Length: " + cl + "\r\n\r\n" + body},
    };
    for (const auto& [name, bytes] : cases) {
        BOOST_TEST_CONTEXT(name)
        {
            fake_agent fake;
            fake.set_default(fake_step::respond_and_close(bytes));
            const auto r = get_k(single_attempt(fake.port()));
            expect_prompt_error(r);
            BOOST_TEST(r.ms < 450);
        }
    }
}

// Framing HTTP/1.1 allows, or that a client may refuse: either way a definite, prompt outcome, and never a
// half-parsed result.
BOOST_AUTO_TEST_CASE(unusual_but_legal_framing_gives_a_definite_outcome)
{
    const std::string body = entry_json("k");
    const std::string cl = std::to_string(body.size());
    auto hex = [](std::size_t n) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%zx", n);
        return std::string(buf);
    };
    const std::vector<std::tuple<std::string, std::string, bool>> cases = {
        // name, bytes, must succeed
        {"chunked body", "HTTP/1.1 200 OK\r\nX-Consul-Index: 5\r\nTransfer-Encoding: chunked\r\n\r\n" + hex(10) +
                             "\r\n" + body.substr(0, 10) + "\r\n" + hex(body.size() - 10) + "\r\n" + body.substr(10) +
                             "\r\n0\r\n\r\n",
         true},
        {"Content-Length and chunked", "HTTP/1.1 200 OK\r\nX-Consul-Index: 5\r\nContent-Length: 3\r\n"
                                       "Transfer-Encoding: chunked\r\n\r\n" + hex(body.size()) + "\r\n" + body +
                                           "\r\n0\r\n\r\n",
         false},
        {"100 Continue before the response", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX-Consul-Index: 5\r\n"
                                             "Content-Length: " + cl + "\r\n\r\n" + body,
         false},
        {"obs-fold header", "HTTP/1.1 200 OK\r\nX-Consul-Index: 5\r\nX-Folded: a\r\n b\r\nContent-Length: " + cl +
                                "\r\n\r\n" + body,
         false},
        {"bare LF line ends", "HTTP/1.1 200 OK\nX-Consul-Index: 5\nContent-Length: " + cl + "\n\n" + body, false},
    };
    for (const auto& [name, bytes, must_succeed] : cases) {
        BOOST_TEST_CONTEXT(name)
        {
            fake_agent fake;
            fake.set_default(fake_step::respond_and_close(bytes));
            const auto r = get_k(single_attempt(fake.port()));
            BOOST_TEST(r.ms < 450);
            BOOST_TEST(r.ec != errc::request_timeout, r.ec.message());
            if (must_succeed)
                BOOST_TEST(!r.ec, r.ec.message());
            if (r.ec) {
                BOOST_TEST(!r.value.entry.has_value());
            } else {
                BOOST_TEST_REQUIRE(r.value.entry.has_value());
                BOOST_TEST(r.value.entry->value == "value");
                BOOST_TEST(r.value.meta.index == 5u);
            }
            BOOST_TEST_MESSAGE(name << ": " << (r.ec ? r.ec.message() : std::string("parsed")));
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(index_header)

void expect_bad_index_header(std::vector<std::pair<std::string, std::string>> headers)
{
    fake_agent fake;
    fake.push(fake_step::respond(fake_agent::reply(200, entry_json("k"), std::move(headers))));
    // A retry would get this good reply: a bad header must not be retried into success.
    fake.push(fake_step::respond(fake_agent::consul_reply(entry_json("k"), 5)));
    diagnostics diag;
    query_options q;
    q.diag = &diag;
    const auto r = get_k(fake_agent_options(fake.port()), q);
    BOOST_TEST(r.ec == errc::bad_response, r.ec.message());
    BOOST_TEST(!r.value.entry.has_value());
    BOOST_TEST(r.value.meta.index == 0u);
    BOOST_TEST(diag.http_status == 200u);
    BOOST_TEST(fake.requests().size() == 1u);
}

BOOST_AUTO_TEST_CASE(missing_x_consul_index_is_bad_response)
{
    expect_bad_index_header({{"Content-Type", "application/json"}, {"X-Consul-KnownLeader", "true"}});
}

BOOST_AUTO_TEST_CASE(non_numeric_x_consul_index_is_bad_response)
{
    expect_bad_index_header({{"X-Consul-Index", "12abc"}});
}

BOOST_AUTO_TEST_CASE(negative_x_consul_index_is_bad_response)
{
    expect_bad_index_header({{"X-Consul-Index", "-1"}});
}

BOOST_AUTO_TEST_CASE(x_consul_index_above_2_pow_64_is_bad_response)
{
    expect_bad_index_header({{"X-Consul-Index", "18446744073709551616"}});
}

BOOST_AUTO_TEST_CASE(empty_x_consul_index_is_bad_response)
{
    expect_bad_index_header({{"X-Consul-Index", ""}});
}

BOOST_AUTO_TEST_CASE(x_consul_index_of_2_pow_64_minus_1_is_accepted)
{
    fake_agent fake;
    fake.push(fake_step::respond(fake_agent::reply(200, entry_json("k"), {{"X-Consul-Index", "18446744073709551615"}})));
    const auto r = get_k(fake_agent_options(fake.port()));
    BOOST_TEST(!r.ec, r.ec.message());
    BOOST_TEST(r.value.meta.index == 18446744073709551615ull);
}

BOOST_AUTO_TEST_CASE(cancelled_requests_give_their_connection_back_to_the_pool)
{
    // One connection in all: if a cancelled request kept its slot, the last request would wait for
    // a slot until its deadline instead of succeeding.
    fake_agent fake;
    for (int i = 0; i < 5; ++i)
        fake.push(fake_step::never_reply());
    fake.push(fake_step::respond(fake_agent::consul_reply(entry_json("k"), 7)));
    auto o = fake_agent_options(fake.port());
    o.max_connections = 1;
    o.reserved_connections = 0;
    o.request_timeout = 2s;
    with_client(o, [&](client& c, asio::io_context& ioc) -> asio::awaitable<void> {
        for (int i = 0; i < 5; ++i) {
            asio::cancellation_signal signal;
            asio::steady_timer t(ioc, 50ms);
            t.async_wait([&](error_code) { signal.emit(asio::cancellation_type::terminal); });
            auto [ec, r] = co_await c.kv_get("k", query_options{}, asio::bind_cancellation_slot(signal.slot(), tuple_awaitable));
            BOOST_TEST(ec == asio::error::operation_aborted, ec.message());
        }
        const auto t0 = clock_type::now();
        auto [ec, r] = co_await c.kv_get("k", query_options{}, tuple_awaitable);
        BOOST_TEST(!ec, ec.message());
        BOOST_TEST((clock_type::now() - t0 < 1s));
    });
    BOOST_TEST(fake.requests().size() == 6u);
}

BOOST_AUTO_TEST_CASE(a_token_with_control_characters_is_refused_before_io)
{
    fake_agent fake;
    query_options q;
    q.token = "t0k3n\r\nX-Injected: yes";
    const auto r = get_k(fake_agent_options(fake.port()), q);
    BOOST_TEST(r.ec == errc::invalid_argument, r.ec.message());
    BOOST_TEST(fake.requests().empty());
}

BOOST_AUTO_TEST_SUITE_END()
