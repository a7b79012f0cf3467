#include "floor.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <stdexcept>
#include <string_view>

namespace colock::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// Consul's Go api.Lock flags (colock::lock_flags), written by every acquire and release.
constexpr std::string_view lock_flags_text = "3304740253564472344";

std::string_view trimmed(std::string_view s)
{
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) {
        s.remove_suffix(1);
    }
    return s;
}

} // namespace

struct protocol_floor::state {
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    std::string host;
    std::uint16_t port;
    std::string key;
    floor_endpoint endpoint;
    std::string sid;
    http::request<http::string_body> acquire_req;
    http::request<http::string_body> release_req;

    state(asio::any_io_executor ex, std::string h, std::uint16_t p, std::string k, floor_endpoint e)
        : stream(ex), host(std::move(h)), port(p), key(std::move(k)), endpoint(e)
    {
    }

    http::request<http::string_body> make(http::verb verb, std::string target, std::string body = {}) const
    {
        http::request<http::string_body> req{verb, target, 11};
        req.set(http::field::host, host + ":" + std::to_string(port));
        req.set(http::field::user_agent, "colock-bench-floor");
        req.keep_alive(true);
        req.body() = std::move(body);
        req.prepare_payload();
        return req;
    }

    // One exchange on the kept-alive connection.
    asio::awaitable<http::response<http::string_body>> exchange(const http::request<http::string_body>& req)
    {
        co_await http::async_write(stream, req, asio::use_awaitable);
        http::response<http::string_body> res;
        co_await http::async_read(stream, buffer, res, asio::use_awaitable);
        co_return res;
    }

    // kv: 200 "true"; txn: 200 with results (a rolled-back txn is a 409).
    asio::awaitable<void> expect_success(const http::request<http::string_body>& req)
    {
        auto res = co_await exchange(req);
        bool ok = res.result() == http::status::ok &&
                  (endpoint == floor_endpoint::txn ? res.body().find("\"Results\"") != std::string::npos
                                                   : trimmed(res.body()) == "true");
        if (!ok) {
            throw std::runtime_error("floor: " + std::string(req.target()) + " answered " +
                                     std::to_string(res.result_int()) + " '" + std::string(trimmed(res.body())) +
                                     "'");
        }
    }
};

protocol_floor::protocol_floor(asio::any_io_executor ex, std::string host, std::uint16_t port, std::string key,
                               floor_endpoint endpoint)
    : s_(std::make_unique<state>(std::move(ex), std::move(host), port, std::move(key), endpoint))
{
}

protocol_floor::~protocol_floor() = default;

const std::string& protocol_floor::session_id() const noexcept { return s_->sid; }

asio::awaitable<void> protocol_floor::open()
{
    tcp::resolver resolver(co_await asio::this_coro::executor);
    auto endpoints = co_await resolver.async_resolve(s_->host, std::to_string(s_->port), asio::use_awaitable);
    co_await s_->stream.async_connect(endpoints, asio::use_awaitable);
    s_->stream.socket().set_option(tcp::no_delay(true));

    auto create = s_->make(http::verb::put, "/v1/session/create",
                           R"({"Name":"colock bench floor","TTL":"60s","LockDelay":"0s","NodeChecks":[]})");
    auto res = co_await s_->exchange(create);
    if (res.result() != http::status::ok) {
        throw std::runtime_error("floor: session create answered " + std::to_string(res.result_int()) + " " +
                                 res.body());
    }
    s_->sid = std::string(boost::json::parse(res.body()).as_object().at("ID").as_string());

    if (s_->endpoint == floor_endpoint::kv) {
        std::string flags = "&flags=" + std::string(lock_flags_text);
        s_->acquire_req = s_->make(http::verb::put, "/v1/kv/" + s_->key + "?acquire=" + s_->sid + flags);
        s_->release_req = s_->make(http::verb::put, "/v1/kv/" + s_->key + "?release=" + s_->sid + flags);
    } else {
        auto op = [&](const char* verb) {
            return R"([{"KV":{"Verb":")" + std::string(verb) + R"(","Key":")" + s_->key + R"(","Flags":)" +
                   std::string(lock_flags_text) + R"(,"Session":")" + s_->sid + R"("}}])";
        };
        s_->acquire_req = s_->make(http::verb::put, "/v1/txn", op("lock"));
        s_->release_req = s_->make(http::verb::put, "/v1/txn", op("unlock"));
    }
}

asio::awaitable<void> protocol_floor::run(std::size_t cycles, samples& out)
{
    auto renew = s_->make(http::verb::put, "/v1/session/renew/" + s_->sid);
    auto res = co_await s_->exchange(renew);
    if (res.result() != http::status::ok) {
        throw std::runtime_error("floor: session renew answered " + std::to_string(res.result_int()));
    }
    for (std::size_t i = 0; i < cycles; ++i) {
        auto t0 = clock_type::now();
        co_await s_->expect_success(s_->acquire_req);
        co_await s_->expect_success(s_->release_req);
        out.add(clock_type::now() - t0);
    }
}

asio::awaitable<void> protocol_floor::close()
{
    auto destroy = s_->make(http::verb::put, "/v1/session/destroy/" + s_->sid);
    co_await s_->exchange(destroy);
    auto remove = s_->make(http::verb::delete_, "/v1/kv/" + s_->key);
    co_await s_->exchange(remove);
    beast::error_code ignored;
    s_->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    s_->stream.close();
}

} // namespace colock::bench
