// Self-test of the scripted fake agent (test/common/fake_agent.hpp): each action does what it says, seen from a plain
// Beast client on the test thread (not the colock library). Every client step runs under a socket-level deadline
// (beast::tcp_stream::expires_after) and io_context::run_for, so a hang is a failure within seconds.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fake_agent.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using colock::test::fake_agent;
using colock::test::fake_step;
using namespace std::chrono_literals;
using namespace std::string_literals;
using clock_type = std::chrono::steady_clock;

// A synchronous-looking Beast client: each call starts one async operation under a deadline and runs the client's
// own io_context until it completes. BOOST_REQUIRE fails the test if the handler never ran.
class test_client {
public:
    explicit test_client(std::uint16_t port) {
        const auto ec = run(2s, [&](auto handler) {
            stream_.async_connect(tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), port), std::move(handler));
        });
        BOOST_REQUIRE_MESSAGE(!ec, "connect: " << ec.message());
    }

    error_code send(http::verb method, std::string target, std::string body = {},
                    std::vector<std::pair<std::string, std::string>> fields = {}) {
        auto req = std::make_shared<http::request<http::string_body>>(method, target, 11);
        req->set(http::field::host, "127.0.0.1");
        for (auto& [name, value] : fields)
            req->set(name, value);
        req->body() = std::move(body);
        req->prepare_payload();
        return run(2s, [&](auto handler) { http::async_write(stream_, *req, std::move(handler)); });
    }

    error_code send_raw(std::string bytes) {
        auto data = std::make_shared<std::string>(std::move(bytes));
        return run(2s, [&](auto handler) { asio::async_write(stream_, asio::buffer(*data), std::move(handler)); });
    }

    std::pair<error_code, http::response<http::string_body>> read_response(std::chrono::milliseconds deadline = 2s) {
        http::response<http::string_body> res;
        const auto ec =
            run(deadline, [&](auto handler) { http::async_read(stream_, buffer_, res, std::move(handler)); });
        return {ec, std::move(res)};
    }

    struct raw_result {
        error_code ec;      // what ended the reading (none if max_bytes arrived)
        std::string data;   // every byte received
        std::size_t reads;  // completed non-empty reads
    };
    // Reads raw bytes until max_bytes arrived, an error (EOF, reset, timeout) or the deadline.
    raw_result read_raw(std::size_t max_bytes, std::chrono::milliseconds deadline = 2s) {
        raw_result r{{}, beast::buffers_to_string(buffer_.data()), 0};
        buffer_.consume(buffer_.size());
        const auto end = clock_type::now() + deadline;
        while (r.data.size() < max_bytes) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - clock_type::now());
            if (left <= 0ms) {
                r.ec = beast::error::timeout;
                break;
            }
            char chunk[4096];
            std::size_t got = 0;
            r.ec = run(left, [&](auto handler) {
                stream_.async_read_some(asio::buffer(chunk), [&got, h = std::move(handler)](error_code ec,
                                                                                            std::size_t n) mutable {
                    got = n;
                    h(ec);
                });
            });
            r.data.append(chunk, got);
            if (got > 0)
                ++r.reads;
            if (r.ec)
                break;
        }
        return r;
    }

private:
    template <class Start>
    error_code run(std::chrono::milliseconds deadline, Start start) {
        std::optional<error_code> result;
        stream_.expires_after(deadline);
        start([&result](error_code ec, auto&&...) { result = ec; });
        ioc_.restart();
        ioc_.run_for(deadline + 1s);
        BOOST_REQUIRE_MESSAGE(result.has_value(), "client operation did not complete");
        return *result;
    }

    asio::io_context ioc_;
    beast::tcp_stream stream_{ioc_};
    beast::flat_buffer buffer_;
};

// Polls pred every few milliseconds until it holds or the timeout passes.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 2s) {
    const auto end = clock_type::now() + timeout;
    while (!pred()) {
        if (clock_type::now() >= end)
            return false;
        std::this_thread::sleep_for(2ms);
    }
    return true;
}

long long ms_since(clock_type::time_point t0) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0).count();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(test_fake_agent_selftest)

BOOST_AUTO_TEST_CASE(reply_builds_well_formed_bytes) {
    BOOST_TEST(fake_agent::reply(200, "{}") == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
    BOOST_TEST(fake_agent::reply(404, "", {}, false) ==
               "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    // A Content-Length given on purpose (here a lie) is not doubled.
    BOOST_TEST(fake_agent::reply(200, "abc", {{"Content-Length", "10"}}) ==
               "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");

    http::response_parser<http::string_body> parser;
    parser.eager(true);  // header and body in one put()
    error_code ec;
    const auto bytes = fake_agent::consul_reply(R"([{"Key":"a"}])", 42);
    parser.put(asio::buffer(bytes), ec);
    BOOST_REQUIRE(!ec);
    BOOST_REQUIRE(parser.is_done());
    const auto& res = parser.get();
    BOOST_TEST(res.result_int() == 200u);
    BOOST_TEST(res["X-Consul-Index"] == "42");
    BOOST_TEST(res["X-Consul-KnownLeader"] == "true");
    BOOST_TEST(res["X-Consul-LastContact"] == "0");
    BOOST_TEST(res["Content-Type"] == "application/json");
    BOOST_TEST(res.body() == R"([{"Key":"a"}])");
    BOOST_TEST(res.keep_alive());
}

BOOST_AUTO_TEST_CASE(respond_keeps_the_connection_alive_for_the_next_request) {
    fake_agent agent;
    agent.push(fake_step::respond(fake_agent::consul_reply(R"(["first"])", 5)));
    agent.push(fake_step::respond(fake_agent::consul_reply(R"(["second"])", 6)));

    test_client client(agent.port());
    BOOST_REQUIRE(!client.send(http::verb::get, "/v1/kv/a"));
    auto [ec1, res1] = client.read_response();
    BOOST_REQUIRE_MESSAGE(!ec1, ec1.message());
    BOOST_TEST(res1.body() == R"(["first"])");
    BOOST_TEST(res1["X-Consul-Index"] == "5");

    BOOST_REQUIRE(!client.send(http::verb::get, "/v1/kv/b"));
    auto [ec2, res2] = client.read_response();
    BOOST_REQUIRE_MESSAGE(!ec2, ec2.message());
    BOOST_TEST(res2.body() == R"(["second"])");

    const auto reqs = agent.requests();
    BOOST_REQUIRE(reqs.size() == 2u);
    BOOST_TEST(reqs[0].connection == 1u);
    BOOST_TEST(reqs[1].connection == 1u);
    BOOST_TEST(reqs[0].step == 1u);
    BOOST_TEST(reqs[1].step == 2u);
    BOOST_TEST(agent.connections_accepted() == 1u);
    BOOST_TEST(agent.steps_left() == 0u);
}

BOOST_AUTO_TEST_CASE(pipelined_requests_are_answered_in_order) {
    fake_agent agent;
    agent.push(fake_step::respond(fake_agent::reply(200, "one")));
    agent.push(fake_step::respond(fake_agent::reply(200, "two")));

    test_client client(agent.port());
    const std::string req = "GET /x HTTP/1.1\r\nHost: h\r\n\r\n";
    BOOST_REQUIRE(!client.send_raw(req + req));
    auto [ec1, res1] = client.read_response();
    auto [ec2, res2] = client.read_response();
    BOOST_REQUIRE(!ec1);
    BOOST_REQUIRE(!ec2);
    BOOST_TEST(res1.body() == "one");
    BOOST_TEST(res2.body() == "two");
    BOOST_TEST(agent.steps_left() == 0u);
}

BOOST_AUTO_TEST_CASE(records_method_target_body_and_headers) {
    fake_agent agent;
    agent.push(fake_step::respond(fake_agent::consul_reply("true")));

    test_client client(agent.port());
    BOOST_REQUIRE(!client.send(http::verb::put, "/v1/kv/test/lock?acquire=abc-123&flags=7", "payload",
                               {{"X-Consul-Token", "secret"}, {"Content-Type", "application/octet-stream"}}));
    auto [ec, res] = client.read_response();
    BOOST_REQUIRE(!ec);
    BOOST_TEST(res.body() == "true");

    const auto reqs = agent.requests();
    BOOST_REQUIRE(reqs.size() == 1u);
    const auto& r = reqs[0];
    BOOST_TEST(r.method == "PUT");
    BOOST_TEST(r.target == "/v1/kv/test/lock?acquire=abc-123&flags=7");
    BOOST_TEST(r.body == "payload");
    BOOST_TEST(r.connection == 1u);
    BOOST_TEST(r.step == 1u);
    BOOST_REQUIRE(r.headers.count("x-consul-token") == 1u);
    BOOST_TEST(r.headers.at("x-consul-token") == "secret");
    BOOST_TEST(r.headers.at("content-type") == "application/octet-stream");
    BOOST_TEST(r.headers.at("content-length") == "7");
    BOOST_TEST(r.headers.at("host") == "127.0.0.1");
    BOOST_TEST(r.headers.count("X-Consul-Token") == 0u);  // names are lower-case
}

BOOST_AUTO_TEST_CASE(close_before_reply_gives_the_client_eof) {
    fake_agent agent;
    agent.push(fake_step::close_before_reply());

    test_client client(agent.port());
    BOOST_REQUIRE(!client.send(http::verb::put, "/v1/session/create", "{}"));
    auto [ec, res] = client.read_response();
    BOOST_TEST(ec == error_code(http::error::end_of_stream), ec.message());  // Beast's name for EOF before any response byte

    BOOST_TEST(agent.requests().size() == 1u);
    BOOST_TEST(agent.steps_left() == 0u);
}

BOOST_AUTO_TEST_CASE(close_before_reply_is_a_plain_eof_on_the_socket) {
    fake_agent agent;
    agent.push(fake_step::close_before_reply(100ms));

    test_client client(agent.port());
    BOOST_REQUIRE(!client.send(http::verb::get, "/v1/status/leader"));
    const auto t0 = clock_type::now();
    const auto r = client.read_raw(1000);
    BOOST_TEST(r.ec == error_code(asio::error::eof), r.ec.message());
    BOOST_TEST(r.data.empty());
    BOOST_TEST(ms_since(t0) >= 90);  // the delay applies before the close
    BOOST_TEST(agent.steps_left() == 0u);
}

BOOST_AUTO_TEST_CASE(reset_sends_the_first_bytes_then_rst) {
    fake_agent agent;
    const auto full = fake_agent::consul_reply(R"([{"Key":"test/lock","Session":"abc"}])", 9);
    agent.push(fake_step::reset(full, 30));

    test_client client(agent.port());
    BOOST_REQUIRE(!client.send(http::verb::get, "/v1/kv/test/lock?consistent="));
    const auto r = client.read_raw(full.size());
    BOOST_TEST(r.ec == error_code(asio::error::connection_reset), r.ec.message());
    BOOST_TEST(r.data == full.substr(0, 30));  // the fake waits for the bytes to be acked before the RST

    BOOST_TEST(agent.requests().size() == 1u);
    BOOST_TEST(agent.steps_left() == 0u);
}

BOOST_AUTO_TEST_CASE(reset_mid_body_fails_the_beast_read) {
    fake_agent agent;
    const auto full = fake_agent::consul_reply(R"([{"Key":"test/lock","Session":"abc"}])", 9);
    agent.push(fake_step::reset(full, full.size() - 5));

    test_client client(agent.port());
    BOOST_REQUIRE(!client.send(http::verb::get, "/v1/kv/test/lock"));
    auto [ec, res] = client.read_response();
    BOOST_TEST(ec == error_code(asio::error::connection_reset), ec.message());
    BOOST_TEST(agent.steps_left() == 0u);
}

BOOST_AUTO_TEST_CASE(reset_without_bytes_is_an_immediate_rst) {
    fake_agent agent;
    agent.push(fake_step::reset());

    test_client client(agent.port());
    BOOST_REQUIRE(!client.send(http::verb::put, "/v1/session/renew/abc"));
    const auto r = client.read_raw(100);
    BOOST_TEST(r.ec == error_code(asio::error::connection_reset), r.ec.message());
    BOOST_TEST(r.data.empty());
    BOOST_TEST(agent.requests().size() == 1u);
}

BOOST_AUTO_TEST_CASE(never_reply_makes_the_client_read_time_out) {
    fake_agent agent;
    agent.push(fake_step::never_reply());

    test_client client(agent.port());
    BOOST_REQUIRE(!client.send(http::verb::get, "/v1/kv/a?index=5&wait=1s"));
    const auto t0 = clock_type::now();
    auto [ec, res] = client.read_response(300ms);
    const auto elapsed = ms_since(t0);
    BOOST_TEST(ec == error_code(beast::error::timeout), ec.message());
    BOOST_TEST(elapsed >= 290);
    BOOST_TEST(elapsed < 1500);

    const auto reqs = agent.requests();  // the request was read and recorded
    BOOST_REQUIRE(reqs.size() == 1u);
    BOOST_TEST(reqs[0].target == "/v1/kv/a?index=5&wait=1s");
    BOOST_TEST(agent.steps_left() == 0u);
}

BOOST_AUTO_TEST_CASE(never_reply_on_one_connection_does_not_stall_another) {
    fake_agent agent;
    agent.push(fake_step::never_reply());
    agent.push(fake_step::respond(fake_agent::consul_reply("[]")));

    test_client hung(agent.port());
    BOOST_REQUIRE(!hung.send(http::verb::get, "/hang"));
    BOOST_REQUIRE(agent.wait_for_requests(1, 2s));  // the hung request took step 1

    test_client other(agent.port());
    BOOST_REQUIRE(!other.send(http::verb::get, "/ok"));
    auto [ec, res] = other.read_response(1s);
    BOOST_REQUIRE_MESSAGE(!ec, ec.message());
    BOOST_TEST(res.body() == "[]");

    const auto reqs = agent.requests();
    BOOST_REQUIRE(reqs.size() == 2u);
    BOOST_TEST(reqs[0].target == "/hang");
    BOOST_TEST(reqs[0].connection == 1u);
    BOOST_TEST(reqs[1].target == "/ok");
    BOOST_TEST(reqs[1].connection == 2u);
    BOOST_TEST(agent.steps_left() == 0u);
}

BOOST_AUTO_TEST_CASE(blackhole_leaves_the_request_unread_and_unanswered) {
    fake_agent agent;
    agent.push(fake_step::blackhole());

    test_client client(agent.port());
    BOOST_REQUIRE(!client.send(http::verb::put, "/v1/txn", R"([{"KV":{"Verb":"lock"}}])"));
    auto [ec, res] = client.read_response(300ms);
    BOOST_TEST(ec == error_code(beast::error::timeout), ec.message());
    BOOST_TEST(agent.requests().empty());
    BOOST_TEST(agent.connections_accepted() == 1u);
    BOOST_TEST(agent.steps_left() == 0u);
}

BOOST_AUTO_TEST_CASE(idle_keep_alive_connection_does_not_take_a_blackhole_step) {
    fake_agent agent;
    agent.push(fake_step::respond(fake_agent::reply(200, "one")));
    agent.push(fake_step::blackhole());
    agent.push(fake_step::respond(fake_agent::reply(200, "three")));

    test_client first(agent.port());
    BOOST_REQUIRE(!first.send(http::verb::get, "/1"));
    auto [ec1, res1] = first.read_response();
    BOOST_REQUIRE(!ec1);
    BOOST_TEST(res1.body() == "one");
    // `first` now sits idle on a keep-alive connection while the blackhole is at the front of the script.

    test_client second(agent.port());
    BOOST_REQUIRE(!second.send(http::verb::get, "/2"));
    auto [ec2, res2] = second.read_response(300ms);
    BOOST_TEST(ec2 == error_code(beast::error::timeout), ec2.message());

    BOOST_REQUIRE(!first.send(http::verb::get, "/3"));
    auto [ec3, res3] = first.read_response();
    BOOST_REQUIRE(!ec3);
    BOOST_TEST(res3.body() == "three");

    const auto reqs = agent.requests();
    BOOST_REQUIRE(reqs.size() == 2u);
    BOOST_TEST(reqs[0].step == 1u);
    BOOST_TEST(reqs[1].step == 3u);
    BOOST_TEST(reqs[1].connection == 1u);
    BOOST_TEST(agent.steps_left() == 0u);
}

BOOST_AUTO_TEST_CASE(trickle_sends_one_byte_per_interval) {
    fake_agent agent;
    agent.push(fake_step::trickle("0123456789", 50ms));

    test_client client(agent.port());
    BOOST_REQUIRE(!client.send(http::verb::get, "/v1/kv/a"));
    const auto t0 = clock_type::now();
    const auto r = client.read_raw(10, 3s);
    const auto elapsed = ms_since(t0);
    BOOST_TEST(!r.ec, r.ec.message());
    BOOST_TEST(r.data == "0123456789");
    BOOST_TEST(elapsed >= 440);   // 9 intervals of 50 ms between the first and the last byte
    BOOST_TEST(elapsed < 2000);
    BOOST_TEST(r.reads >= 5u);    // bytes came separately, not as one segment
    BOOST_TEST(agent.steps_left() == 0u);
}

BOOST_AUTO_TEST_CASE(trickled_response_parses_and_keeps_the_connection) {
    fake_agent agent;
    agent.push(fake_step::trickle(fake_agent::reply(200, "ok"), 2ms));
    agent.push(fake_step::respond(fake_agent::reply(200, "again")));

    test_client client(agent.port());
    BOOST_REQUIRE(!client.send(http::verb::get, "/a"));
    auto [ec1, res1] = client.read_response(3s);
    BOOST_REQUIRE_MESSAGE(!ec1, ec1.message());
    BOOST_TEST(res1.body() == "ok");
    BOOST_REQUIRE(!client.send(http::verb::get, "/b"));
    auto [ec2, res2] = client.read_response();
    BOOST_REQUIRE(!ec2);
    BOOST_TEST(res2.body() == "again");
    BOOST_TEST(agent.connections_accepted() == 1u);
    BOOST_TEST(agent.steps_left() == 0u);
}

BOOST_AUTO_TEST_CASE(delay_postpones_the_reply) {
    fake_agent agent;
    agent.push(fake_step::respond(fake_agent::reply(200, "late"), 200ms));

    test_client client(agent.port());
    BOOST_REQUIRE(!client.send(http::verb::get, "/slow"));
    const auto t0 = clock_type::now();
    auto [ec, res] = client.read_response();
    BOOST_REQUIRE(!ec);
    BOOST_TEST(res.body() == "late");
    BOOST_TEST(ms_since(t0) >= 190);
    BOOST_TEST(agent.steps_left() == 0u);
}

BOOST_AUTO_TEST_CASE(close_after_sends_fin_after_the_reply) {
    fake_agent agent;
    agent.push(fake_step::respond_and_close(fake_agent::reply(200, "bye", {}, false)));

    test_client client(agent.port());
    BOOST_REQUIRE(!client.send(http::verb::get, "/a"));
    auto [ec, res] = client.read_response();
    BOOST_REQUIRE(!ec);
    BOOST_TEST(res.body() == "bye");
    BOOST_TEST(!res.keep_alive());
    const auto r = client.read_raw(1);
    BOOST_TEST(r.ec == error_code(asio::error::eof), r.ec.message());
    BOOST_TEST(agent.steps_left() == 0u);
}

BOOST_AUTO_TEST_CASE(request_with_connection_close_is_answered_then_closed) {
    fake_agent agent;
    agent.push(fake_step::respond(fake_agent::reply(200, "x")));

    test_client client(agent.port());
    BOOST_REQUIRE(!client.send(http::verb::get, "/a", {}, {{"Connection", "close"}}));
    auto [ec, res] = client.read_response();
    BOOST_REQUIRE(!ec);
    BOOST_TEST(res.body() == "x");
    const auto r = client.read_raw(1);
    BOOST_TEST(r.ec == error_code(asio::error::eof), r.ec.message());
}

BOOST_AUTO_TEST_CASE(malformed_response_bytes_are_sent_verbatim) {
    fake_agent agent;
    const auto garbage = "HTTP/1.1 2x0 Whatever\r\nContent-Length: -3\r\n\r\n\x00\xff"s;
    agent.push(fake_step::respond_and_close(garbage));

    test_client client(agent.port());
    BOOST_REQUIRE(!client.send(http::verb::get, "/a"));
    const auto r = client.read_raw(garbage.size() + 1);
    BOOST_TEST(r.ec == error_code(asio::error::eof), r.ec.message());
    BOOST_TEST(r.data == garbage);
}

BOOST_AUTO_TEST_CASE(exhausted_script_answers_500) {
    fake_agent agent;
    agent.push(fake_step::respond(fake_agent::reply(200, "only")));

    test_client client(agent.port());
    BOOST_REQUIRE(!client.send(http::verb::get, "/1"));
    auto [ec1, res1] = client.read_response();
    BOOST_REQUIRE(!ec1);
    BOOST_TEST(res1.body() == "only");

    for (int i = 0; i < 2; ++i) {  // keep-alive: both extra requests on the same connection
        BOOST_REQUIRE(!client.send(http::verb::get, "/extra"));
        auto [ec, res] = client.read_response();
        BOOST_REQUIRE(!ec);
        BOOST_TEST(res.result_int() == 500u);
        BOOST_TEST(res.body() == "fake agent: script exhausted");
    }
    const auto reqs = agent.requests();
    BOOST_REQUIRE(reqs.size() == 3u);
    BOOST_TEST(reqs[1].step == 0u);
    BOOST_TEST(reqs[2].step == 0u);
    BOOST_TEST(agent.connections_accepted() == 1u);
}

BOOST_AUTO_TEST_CASE(default_step_replaces_script_exhausted) {
    fake_agent agent;
    agent.push(fake_step::respond(fake_agent::consul_reply("[]", 3)));
    agent.set_default(fake_step::respond(fake_agent::consul_error(500, "No cluster leader")));

    test_client client(agent.port());
    BOOST_REQUIRE(!client.send(http::verb::get, "/1"));
    auto [ec1, res1] = client.read_response();
    BOOST_REQUIRE(!ec1);
    BOOST_TEST(res1.result_int() == 200u);
    for (int i = 0; i < 3; ++i) {
        BOOST_REQUIRE(!client.send(http::verb::get, "/again"));
        auto [ec, res] = client.read_response();
        BOOST_REQUIRE(!ec);
        BOOST_TEST(res.result_int() == 500u);
        BOOST_TEST(res.body() == "No cluster leader");
    }
    BOOST_TEST(agent.requests().size() == 4u);
    BOOST_TEST(agent.steps_left() == 0u);
}

BOOST_AUTO_TEST_CASE(steps_pushed_while_serving_are_used) {
    fake_agent agent;
    test_client client(agent.port());
    BOOST_REQUIRE(!client.send(http::verb::get, "/1"));
    auto [ec1, res1] = client.read_response();
    BOOST_REQUIRE(!ec1);
    BOOST_TEST(res1.result_int() == 500u);

    agent.push(fake_step::respond(fake_agent::reply(204, "")));
    BOOST_TEST(agent.steps_left() == 1u);
    BOOST_REQUIRE(!client.send(http::verb::get, "/2"));
    auto [ec2, res2] = client.read_response();
    BOOST_REQUIRE(!ec2);
    BOOST_TEST(res2.result_int() == 204u);
    BOOST_TEST(agent.requests().at(1).step == 1u);
}

BOOST_AUTO_TEST_CASE(destructor_returns_quickly_with_hung_connections) {
    auto agent = std::make_unique<fake_agent>();
    agent->push(fake_step::never_reply());
    agent->push(fake_step::blackhole());
    agent->push(fake_step::trickle(std::string(100, 'x'), 10s));
    agent->push(fake_step::respond("never sent", 10s));
    agent->push(fake_step::reset("y", 1, 10s));

    std::vector<std::unique_ptr<test_client>> clients;
    for (int i = 0; i < 5; ++i) {
        clients.push_back(std::make_unique<test_client>(agent->port()));
        BOOST_REQUIRE(!clients.back()->send(http::verb::get, "/c" + std::to_string(i)));
        // Let each request take its step before the next connection sends (steps go by arrival order).
        BOOST_REQUIRE(eventually([&] { return agent->steps_left() == 4u - static_cast<std::size_t>(i); }));
    }
    // The trickle has started: its first byte is on the wire.
    const auto first = clients[2]->read_raw(1, 1s);
    BOOST_TEST(first.data == "x");
    // One more connection that never sends anything.
    test_client idle(agent->port());
    BOOST_TEST(agent->steps_left() == 0u);

    const auto t0 = clock_type::now();
    agent.reset();
    const auto elapsed = ms_since(t0);
    BOOST_TEST(elapsed < 500, "destructor took " << elapsed << " ms");

    // Every client sees its connection go away (EOF or reset), none hangs.
    for (auto& c : clients) {
        const auto r = c->read_raw(1000, 1s);
        BOOST_TEST((r.ec == error_code(asio::error::eof) || r.ec == error_code(asio::error::connection_reset)), r.ec.message());
    }
    const auto r = idle.read_raw(1, 1s);
    BOOST_TEST((r.ec == error_code(asio::error::eof) || r.ec == error_code(asio::error::connection_reset)), r.ec.message());
}

BOOST_AUTO_TEST_SUITE_END()
