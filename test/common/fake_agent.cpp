#include "fake_agent.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <exception>
#include <future>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>

#ifdef __linux__
#include <linux/sockios.h>
#include <sys/ioctl.h>
#endif

namespace colock::test {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

constexpr std::size_t header_limit = 64 * 1024;
constexpr std::uint64_t body_limit = 64 * 1024 * 1024;
constexpr std::chrono::milliseconds reset_flush_limit{200};

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

bool has_field(const std::vector<std::pair<std::string, std::string>>& headers, std::string_view name) {
    return std::any_of(headers.begin(), headers.end(), [&](const auto& h) { return lower(h.first) == name; });
}

struct connection {
    connection(tcp::socket s, std::size_t i) : socket(std::move(s)), timer(socket.get_executor()), id(i) {}
    tcp::socket socket;
    asio::steady_timer timer;  // delays, trickle intervals, and "hold until the server stops"
    std::size_t id;
    beast::flat_buffer buffer;  // bytes read but not yet parsed (pipelined requests)
};

// Bytes the kernel still has in the send queue (unsent or unacknowledged); 0 where unknown.
std::size_t unacknowledged(tcp::socket& s) {
#ifdef __linux__
    int pending = 0;
    if (::ioctl(s.native_handle(), SIOCOUTQ, &pending) == 0 && pending > 0)
        return static_cast<std::size_t>(pending);
#else
    (void)s;
#endif
    return 0;
}

}  // namespace

struct fake_agent::impl {
    asio::io_context ioc{1};
    tcp::acceptor acceptor{ioc};
    std::uint16_t port = 0;
    std::thread thread;
    std::promise<void> done;

    // Only touched on the server thread.
    std::map<std::size_t, std::shared_ptr<connection>> live;
    bool stopping = false;

    // Shared with the test thread.
    mutable std::mutex mu;
    mutable std::condition_variable cv;
    std::deque<fake_step> script;
    std::size_t claimed = 0;  // script steps consumed so far
    std::optional<fake_step> fallback;
    std::vector<recorded_request> log;
    std::size_t accepted = 0;

    // The step for a complete request: the front of the script, else the default, else "script exhausted".
    std::pair<fake_step, std::size_t> claim() {
        std::lock_guard lock(mu);
        if (!script.empty()) {
            fake_step s = std::move(script.front());
            script.pop_front();
            return {std::move(s), ++claimed};
        }
        if (fallback)
            return {*fallback, 0};
        return {fake_step{.response = reply(500, "fake agent: script exhausted")}, 0};
    }

    // Consumes the front step only if it is a blackhole (called before reading a request).
    bool claim_blackhole() {
        std::lock_guard lock(mu);
        if (!script.empty() && script.front().what == fake_step::action::blackhole) {
            script.pop_front();
            ++claimed;
            return true;
        }
        if (script.empty() && fallback && fallback->what == fake_step::action::blackhole)
            return true;
        return false;
    }

    void record(recorded_request r) {
        {
            std::lock_guard lock(mu);
            log.push_back(std::move(r));
        }
        cv.notify_all();
    }

    asio::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, socket] = co_await acceptor.async_accept(nothrow);
            if (stopping || ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor)
                co_return;
            if (ec)
                continue;  // e.g. ECONNABORTED: the client gave up before we accepted
            std::size_t id = 0;
            {
                std::lock_guard lock(mu);
                id = ++accepted;
            }
            error_code ignored;
            socket.set_option(tcp::no_delay(true), ignored);  // trickle and reset rely on prompt segments
            auto c = std::make_shared<connection>(std::move(socket), id);
            live.emplace(id, c);
            asio::co_spawn(ioc, serve(c), report);
        }
    }

    static void report(std::exception_ptr e) {
        if (!e)
            return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            std::cerr << "fake_agent: unexpected exception: " << x.what() << '\n';
        }
    }

    asio::awaitable<void> serve(std::shared_ptr<connection> c) {
        co_await serve_requests(*c);
        error_code ignored;
        c->socket.close(ignored);
        live.erase(c->id);
    }

    // Returns when the connection is finished with (closed by either side, or the server is stopping).
    asio::awaitable<void> serve_requests(connection& c) {
        for (;;) {
            if (stopping)
                co_return;
            // Wait for the first byte of the next request without consuming it, so that a blackhole step is taken
            // only by a request that actually arrives (not by an idle keep-alive connection) and stays unread.
            if (c.buffer.size() == 0) {
                char byte = 0;
                auto [ec, n] =
                    co_await c.socket.async_receive(asio::buffer(&byte, 1), tcp::socket::message_peek, nothrow);
                if (ec || n == 0)
                    co_return;
            }
            if (claim_blackhole()) {
                co_await hold(c);
                co_return;
            }

            http::request_parser<http::string_body> parser;
            parser.header_limit(header_limit);
            parser.body_limit(body_limit);
            auto [ec, n] = co_await http::async_read(c.socket, c.buffer, parser, nothrow);
            if (ec)
                co_return;  // client went away mid-request, or sent something Beast cannot parse

            auto [step, index] = claim();
            const auto& req = parser.get();
            recorded_request r;
            r.method = std::string(req.method_string());
            r.target = std::string(req.target());
            for (const auto& f : req) {
                auto name = lower(f.name_string());
                auto [it, fresh] = r.headers.emplace(name, std::string(f.value()));
                if (!fresh)
                    it->second.append(", ").append(f.value());
            }
            r.body = req.body();
            r.connection = c.id;
            r.step = index;
            record(std::move(r));
            const bool client_keeps_alive = parser.keep_alive();

            using action = fake_step::action;
            switch (step.what) {
            case action::respond:
                if (!co_await wait(c, step.delay))
                    co_return;
                if (auto [wec, wn] = co_await asio::async_write(c.socket, asio::buffer(step.response), nothrow); wec)
                    co_return;
                if (step.close_after || !client_keeps_alive) {
                    co_await graceful_close(c);
                    co_return;
                }
                break;
            case action::trickle:
                if (!co_await wait(c, step.delay))
                    co_return;
                for (std::size_t i = 0; i < step.response.size(); ++i) {
                    if (i > 0 && !co_await wait(c, step.interval))
                        co_return;
                    auto [wec, wn] =
                        co_await asio::async_write(c.socket, asio::buffer(step.response.data() + i, 1), nothrow);
                    if (wec)
                        co_return;
                }
                if (step.close_after || !client_keeps_alive) {
                    co_await graceful_close(c);
                    co_return;
                }
                break;
            case action::close_before_reply:
                if (!co_await wait(c, step.delay))
                    co_return;
                co_await graceful_close(c);
                co_return;
            case action::reset: {
                if (!co_await wait(c, step.delay))
                    co_return;
                const auto n_bytes = std::min(step.bytes_before_fault, step.response.size());
                if (n_bytes > 0) {
                    auto [wec, wn] =
                        co_await asio::async_write(c.socket, asio::buffer(step.response.data(), n_bytes), nothrow);
                    if (wec)
                        co_return;
                    // SO_LINGER 0 discards whatever is still queued, so let the peer acknowledge the bytes first.
                    const auto give_up = std::chrono::steady_clock::now() + reset_flush_limit;
                    while (unacknowledged(c.socket) > 0 && std::chrono::steady_clock::now() < give_up)
                        if (!co_await wait(c, std::chrono::milliseconds(1)))
                            co_return;
                }
                error_code ignored;
                c.socket.set_option(asio::socket_base::linger(true, 0), ignored);
                c.socket.close(ignored);
                co_return;
            }
            case action::never_reply:
            case action::blackhole:  // landed here only after the request was read (see the header)
                co_await drain_and_hold(c);
                co_return;
            }
        }
    }

    // Waits `d` on the connection's timer; false if the server is stopping (timer cancelled).
    asio::awaitable<bool> wait(connection& c, std::chrono::milliseconds d) {
        if (d.count() <= 0)
            co_return !stopping;
        c.timer.expires_after(d);
        auto [ec] = co_await c.timer.async_wait(nothrow);
        co_return !ec && !stopping;
    }

    // Holds the socket without reading until the server stops.
    asio::awaitable<void> hold(connection& c) {
        while (!stopping) {
            c.timer.expires_at(asio::steady_timer::time_point::max());
            co_await c.timer.async_wait(nothrow);
        }
    }

    // Reads and discards whatever the client sends until it closes; then (or on a half-close) holds until the
    // server stops. Never writes.
    asio::awaitable<void> drain_and_hold(connection& c) {
        char scratch[4096];
        for (;;) {
            auto [ec, n] = co_await c.socket.async_read_some(asio::buffer(scratch), nothrow);
            if (ec == asio::error::eof)
                break;
            if (ec)
                co_return;
        }
        co_await hold(c);
    }

    // FIN: stop sending, then read until the client closes too, so that unread bytes cannot turn close() into RST.
    asio::awaitable<void> graceful_close(connection& c) {
        error_code ignored;
        c.socket.shutdown(tcp::socket::shutdown_send, ignored);
        char scratch[4096];
        for (;;) {
            auto [ec, n] = co_await c.socket.async_read_some(asio::buffer(scratch), nothrow);
            if (ec)
                co_return;
        }
    }

    // Runs on the server thread: every pending operation completes with operation_aborted, so the coroutines end
    // and run() returns.
    void shutdown() {
        stopping = true;
        error_code ignored;
        acceptor.close(ignored);
        auto conns = live;  // the coroutines erase themselves from `live` later
        for (auto& [id, c] : conns) {
            c->timer.cancel();
            c->socket.close(ignored);
        }
    }
};

fake_agent::fake_agent() : fake_agent("127.0.0.1") {}

fake_agent::fake_agent(const std::string& address) : impl_(std::make_unique<impl>()) {
    auto& i = *impl_;
    const auto ip = asio::ip::make_address(address);
    i.acceptor.open(ip.is_v6() ? tcp::v6() : tcp::v4());
    i.acceptor.set_option(asio::socket_base::reuse_address(true));
    i.acceptor.bind(tcp::endpoint(ip, 0));
    i.acceptor.listen(asio::socket_base::max_listen_connections);
    i.port = i.acceptor.local_endpoint().port();
    asio::co_spawn(i.ioc, i.accept_loop(), &impl::report);
    i.thread = std::thread([&i] {
        try {
            i.ioc.run();
        } catch (const std::exception& x) {
            std::cerr << "fake_agent: server thread: " << x.what() << '\n';
        }
        i.done.set_value();
    });
}

fake_agent::~fake_agent() {
    auto& i = *impl_;
    auto finished = i.done.get_future();
    asio::post(i.ioc, [&i] { i.shutdown(); });
    if (finished.wait_for(std::chrono::seconds(1)) != std::future_status::ready) {
        std::cerr << "fake_agent: connections did not wind down within 1 s; stopping the io_context\n";
        i.ioc.stop();
    }
    i.thread.join();
    // Coroutine frames left behind by a forced stop are destroyed with the io_context, inside impl_.
}

std::uint16_t fake_agent::port() const noexcept {
    return impl_->port;
}

void fake_agent::push(fake_step step) {
    std::lock_guard lock(impl_->mu);
    impl_->script.push_back(std::move(step));
}

void fake_agent::set_default(fake_step step) {
    std::lock_guard lock(impl_->mu);
    impl_->fallback = std::move(step);
}

std::string fake_agent::reply(unsigned status, std::string_view body,
                              std::vector<std::pair<std::string, std::string>> headers, bool keep_alive) {
    std::string reason(http::obsolete_reason(static_cast<http::status>(status)));
    if (reason == "<unknown-status>")
        reason = "Unknown";
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n";
    for (const auto& [name, value] : headers)
        out += name + ": " + value + "\r\n";
    if (!has_field(headers, "content-length") && !has_field(headers, "transfer-encoding"))
        out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    if (!keep_alive && !has_field(headers, "connection"))
        out += "Connection: close\r\n";
    out += "\r\n";
    out += body;
    return out;
}

std::string fake_agent::consul_reply(std::string_view json_body, std::uint64_t index) {
    return reply(200, json_body,
                 {{"Content-Type", "application/json"},
                  {"X-Consul-Index", std::to_string(index)},
                  {"X-Consul-KnownLeader", "true"},
                  {"X-Consul-LastContact", "0"}});
}

std::string fake_agent::consul_error(unsigned status, std::string_view text) {
    return reply(status, text, {{"Content-Type", "text/plain; charset=utf-8"}});
}

std::vector<recorded_request> fake_agent::requests() const {
    std::lock_guard lock(impl_->mu);
    return impl_->log;
}

std::size_t fake_agent::connections_accepted() const {
    std::lock_guard lock(impl_->mu);
    return impl_->accepted;
}

std::size_t fake_agent::steps_left() const {
    std::lock_guard lock(impl_->mu);
    return impl_->script.size();
}

bool fake_agent::wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(impl_->mu);
    return impl_->cv.wait_for(lock, timeout, [&] { return impl_->log.size() >= n; });
}

}  // namespace colock::test
