#include "handoff.hpp"

#include <colock/consul/session.hpp>
#include <colock/lock.hpp>

#include "log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>

extern char** environ;

namespace colock::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local_socket = asio::local::stream_protocol::socket;
using tcp = asio::ip::tcp;

namespace {

// One end of the stamp channel: newline-terminated text lines.
struct channel {
    local_socket sock;
    std::string in;

    asio::awaitable<std::string> read_line()
    {
        std::size_t n = co_await asio::async_read_until(sock, asio::dynamic_buffer(in), '\n', asio::use_awaitable);
        std::string line = in.substr(0, n - 1);
        in.erase(0, n);
        co_return line;
    }

    asio::awaitable<void> write_line(std::string line)
    {
        line += '\n';
        co_await asio::async_write(sock, asio::buffer(line), asio::use_awaitable);
    }
};

struct stamps {
    std::vector<std::int64_t> own_release, own_hold, peer_release, peer_hold;
};

// Reads lines until one starting with `wanted` ('W', 'H' or 'D'), recording the peer's stamps met on
// the way (that one's included).
asio::awaitable<void> await_line(channel& ch, stamps& log, char wanted)
{
    for (;;) {
        std::string line = co_await ch.read_line();
        if (line.empty()) {
            throw std::runtime_error("handoff: empty line from the peer");
        }
        switch (line[0]) {
        case 'H':
            log.peer_hold.push_back(std::strtoll(line.c_str() + 2, nullptr, 10));
            break;
        case 'R':
            log.peer_release.push_back(std::strtoll(line.c_str() + 2, nullptr, 10));
            break;
        case 'W':
        case 'D':
            break;
        case 'E':
            throw std::runtime_error("handoff peer failed: " + line.substr(std::min<std::size_t>(2, line.size())));
        default:
            throw std::runtime_error("handoff: unexpected line from the peer: " + line);
        }
        if (line[0] == wanted) {
            co_return;
        }
    }
}

// Handoff h (0-based) goes from the first holder to the other when h is even, back when odd. `Lock`
// is colock::lock or raw_lock: the same turns and stamps for the row and its floor.
template <class Lock>
asio::awaitable<void> alternate(Lock& lk, channel& ch, stamps& log, int total, bool first_holder,
                                std::chrono::milliseconds settle)
{
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (int h = 0; h < total; ++h) {
        bool holder = (h % 2 == 0) == first_holder;
        if (holder) {
            co_await await_line(ch, log, 'W');
            timer.expires_after(settle);
            co_await timer.async_wait(asio::use_awaitable);
            std::int64_t t = monotonic_ns();
            co_await lk.release();
            log.own_release.push_back(t);
            co_await ch.write_line("R " + std::to_string(t));
            // Wait until the other side holds: acquiring again at once could win the key back
            // before the waiter's wake-up arrives, and nothing would be handed off.
            co_await await_line(ch, log, 'H');
        } else {
            co_await ch.write_line("W");
            co_await lk.acquire();
            std::int64_t t = monotonic_ns();
            log.own_hold.push_back(t);
            co_await ch.write_line("H " + std::to_string(t));
        }
    }
}

std::pair<std::string, std::uint16_t> split_agent(const std::string& agent)
{
    auto colon = agent.rfind(':');
    if (colon == std::string::npos) {
        throw std::runtime_error("--agent wants host:port, got '" + agent + "'");
    }
    return {agent.substr(0, colon), static_cast<std::uint16_t>(std::stoul(agent.substr(colon + 1)))};
}

consul::client_options options_for(const std::string& agent)
{
    consul::client_options o;
    auto [host, port] = split_agent(agent);
    o.host = host;
    o.port = port;
    return o;
}

// Consul's Go api.Lock flags (colock::lock_flags), as the cycle floor writes them.
constexpr std::string_view lock_flags_text = "3304740253564472344";

std::string_view trimmed(std::string_view s)
{
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) {
        s.remove_suffix(1);
    }
    return s;
}

// The handoff floor's lock: the Consul protocol of a blocking lock and nothing else (no deadlines,
// retries or state beyond the index). Any answer outside the protocol ends the benchmark.
class raw_lock {
public:
    raw_lock(asio::any_io_executor ex, const std::string& agent, std::string key)
        : stream_(std::move(ex)), key_(std::move(key))
    {
        std::tie(host_, port_) = split_agent(agent);
    }

    // Connects and creates the session (TTL 60 s, no checks, lock-delay 0).
    asio::awaitable<void> open()
    {
        tcp::resolver resolver(co_await asio::this_coro::executor);
        auto endpoints = co_await resolver.async_resolve(host_, std::to_string(port_), asio::use_awaitable);
        co_await stream_.async_connect(endpoints, asio::use_awaitable);
        stream_.socket().set_option(tcp::no_delay(true));
        auto create = make(http::verb::put, "/v1/session/create",
                           R"({"Name":"colock bench handoff floor","TTL":"60s","LockDelay":"0s","NodeChecks":[]})");
        auto res = co_await exchange(create);
        if (res.result() != http::status::ok) {
            throw std::runtime_error("handoff floor: session create answered " + std::to_string(res.result_int()) +
                                     " " + res.body());
        }
        sid_ = std::string(boost::json::parse(res.body()).as_object().at("ID").as_string());
        std::string flags = "&flags=" + std::string(lock_flags_text);
        get_req_ = make(http::verb::get, "/v1/kv/" + key_);
        acquire_req_ = make(http::verb::put, "/v1/kv/" + key_ + "?acquire=" + sid_ + flags);
        release_req_ = make(http::verb::put, "/v1/kv/" + key_ + "?release=" + sid_ + flags);
    }

    // Plain GET for the index; while the key is held, a blocking GET from the last index; once it
    // is free, PUT ?acquire (a `false` there: someone was quicker, wait again).
    asio::awaitable<void> acquire()
    {
        auto res = co_await exchange(get_req_);
        for (;;) {
            if (res.result() != http::status::ok && res.result() != http::status::not_found) {
                throw std::runtime_error("handoff floor: GET answered " + std::to_string(res.result_int()));
            }
            std::string index(res[http_index_header]);
            if (index.empty()) {
                throw std::runtime_error("handoff floor: a GET without X-Consul-Index");
            }
            if (is_free(res)) {
                auto put = co_await exchange(acquire_req_);
                std::string_view body = trimmed(put.body());
                if (put.result() == http::status::ok && body == "true") {
                    co_return;
                }
                if (put.result() != http::status::ok || body != "false") {
                    throw std::runtime_error("handoff floor: acquire answered " + std::to_string(put.result_int()) +
                                             " '" + std::string(body) + "'");
                }
            }
            auto wait = make(http::verb::get, "/v1/kv/" + key_ + "?index=" + index + "&wait=10s");
            res = co_await exchange(wait);
        }
    }

    asio::awaitable<void> release()
    {
        auto res = co_await exchange(release_req_);
        if (res.result() != http::status::ok || trimmed(res.body()) != "true") {
            throw std::runtime_error("handoff floor: release answered " + std::to_string(res.result_int()) + " '" +
                                     std::string(trimmed(res.body())) + "'");
        }
    }

    // Destroys the session (which frees the key if still held) and hangs up.
    asio::awaitable<void> close()
    {
        auto destroy = make(http::verb::put, "/v1/session/destroy/" + sid_);
        co_await exchange(destroy);
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.close();
    }

private:
    static constexpr std::string_view http_index_header = "X-Consul-Index";

    http::request<http::string_body> make(http::verb verb, std::string target, std::string body = {}) const
    {
        http::request<http::string_body> req{verb, target, 11};
        req.set(http::field::host, host_ + ":" + std::to_string(port_));
        req.set(http::field::user_agent, "colock-bench-handoff-floor");
        req.keep_alive(true);
        req.body() = std::move(body);
        req.prepare_payload();
        return req;
    }

    asio::awaitable<http::response<http::string_body>> exchange(const http::request<http::string_body>& req)
    {
        co_await http::async_write(stream_, req, asio::use_awaitable);
        http::response<http::string_body> res;
        co_await http::async_read(stream_, buffer_, res, asio::use_awaitable);
        co_return res;
    }

    // Free: no key (404) or no session in it. Consul leaves "Session" out of an unheld entry (an
    // empty one counts as free too); the agent may indent its JSON, so blanks around ':' are skipped.
    static bool is_free(const http::response<http::string_body>& res)
    {
        if (res.result() == http::status::not_found) {
            return true;
        }
        std::string_view body = res.body();
        constexpr std::string_view field = "\"Session\"";
        auto at = body.find(field);
        if (at == std::string_view::npos) {
            return true;
        }
        auto value = body.find_first_not_of(" \t\r\n:", at + field.size());
        return value == std::string_view::npos || body.substr(value, 2) == "\"\"";
    }

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::string host_;
    std::uint16_t port_ = 0;
    std::string key_;
    std::string sid_;
    http::request<http::string_body> get_req_, acquire_req_, release_req_;
};

int even_total(const handoff_settings& s)
{
    int total = s.warmup + s.handoffs;
    return total + (total % 2);
}

// Starts the peer in `role` with its end of the socket pair as fd 3; returns its pid.
pid_t spawn_peer(const std::string& self_exe, const char* role, const handoff_settings& s, int total,
                 int peer_fd)
{
    std::vector<std::string> args = {self_exe, "--role", role, "--agent", s.agent, "--key", s.key,
                                     "--handoffs", std::to_string(total), "--settle-ms",
                                     std::to_string(s.settle.count()), "--fd", "3"};
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, peer_fd, 3); // dup2 clears close-on-exec on fd 3
    posix_spawn_file_actions_addclosefrom_np(&fa, 4);  // none of our sockets to the agent
    pid_t pid = -1;
    int rc = ::posix_spawn(&pid, self_exe.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        throw std::runtime_error("handoff: could not start the peer process " + self_exe + ": " + std::strerror(rc));
    }
    return pid;
}

// Pairs the stamps: handoff 2k went from this process to the peer, 2k+1 back.
handoff_result latencies(const stamps& log, int warmup)
{
    handoff_result r;
    r.warmup = warmup;
    r.runs = 1;
    for (std::size_t k = 0; k < log.own_release.size() && k < log.peer_hold.size(); ++k) {
        if (int(2 * k) < warmup) {
            continue;
        }
        std::int64_t d = log.peer_hold[k] - log.own_release[k];
        r.non_positive += d <= 0;
        r.to_peer.add(d);
        r.latency.add(d);
    }
    for (std::size_t k = 0; k < log.peer_release.size() && k < log.own_hold.size(); ++k) {
        if (int(2 * k + 1) < warmup) {
            continue;
        }
        std::int64_t d = log.own_hold[k] - log.peer_release[k];
        r.non_positive += d <= 0;
        r.from_peer.add(d);
        r.latency.add(d);
    }
    return r;
}

// This process's side after the spawn: every turn, then the final release and the peer's "D".
template <class Lock>
asio::awaitable<void> parent_turns(Lock& lk, channel& ch, stamps& log, int total, std::chrono::milliseconds settle)
{
    co_await alternate(lk, ch, log, total, true, settle);
    co_await lk.release(); // the last handoff came back to this process
    co_await await_line(ch, log, 'D');
}

// The parent's side with `lk` already held: spawns the peer in `role`, takes the turns, waits for it.
template <class Lock>
asio::awaitable<handoff_result> run_parent(Lock& lk, const handoff_settings& s, const std::string& self_exe,
                                           const char* role)
{
    auto ex = co_await asio::this_coro::executor;
    const int total = even_total(s);

    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        throw std::runtime_error("handoff: socketpair failed");
    }
    pid_t pid = -1;
    try {
        pid = spawn_peer(self_exe, role, s, total, sv[1]);
    } catch (...) {
        ::close(sv[0]);
        ::close(sv[1]);
        throw;
    }
    ::close(sv[1]);

    channel ch{local_socket(ex, asio::local::stream_protocol(), sv[0]), {}};
    stamps log;
    auto turns = parent_turns(lk, ch, log, total, s.settle);
    auto [failure] = co_await asio::co_spawn(ex, std::move(turns), asio::as_tuple(asio::use_awaitable));
    boost::system::error_code ignored;
    ch.sock.close(ignored); // a peer still waiting sees EOF and ends
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (failure) {
        std::rethrow_exception(failure);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        throw std::runtime_error("handoff: the peer process failed (status " + std::to_string(status) + ")");
    }
    co_return latencies(log, s.warmup);
}

// A peer's failure, on its stderr and to the parent as an "E" line (which ends the parent's wait).
void tell_failure(channel& ch, const std::string& what)
{
    std::fprintf(stderr, "handoff peer: %s\n", what.c_str());
    std::string msg = "E " + what;
    for (auto& c : msg) {
        c = c == '\n' ? ' ' : c;
    }
    msg += '\n';
    boost::system::error_code ec;
    asio::write(ch.sock, asio::buffer(msg), ec);
}

// The peer's turns; a failure goes to the parent as an "E" line. Returns false on failure.
template <class Lock>
asio::awaitable<bool> peer_turns(Lock& lk, channel& ch, int total_handoffs, std::chrono::milliseconds settle)
{
    try {
        stamps log;
        co_await alternate(lk, ch, log, total_handoffs, false, settle);
        co_await ch.write_line("D");
        co_return true;
    } catch (const std::exception& e) {
        tell_failure(ch, e.what());
    }
    co_return false;
}

} // namespace

void merge(handoff_result& into, const handoff_result& from)
{
    for (auto d : from.latency.ns) {
        into.latency.add(d);
    }
    for (auto d : from.to_peer.ns) {
        into.to_peer.add(d);
    }
    for (auto d : from.from_peer.ns) {
        into.from_peer.add(d);
    }
    into.non_positive += from.non_positive;
    into.warmup += from.warmup;
    into.runs += from.runs;
}

asio::awaitable<handoff_result> run_handoff(consul::client& c, handoff_settings s, std::string self_exe)
{
    colock::lock lk(c, s.key);
    co_await lk.acquire(); // this process holds first
    co_return co_await run_parent(lk, s, self_exe, "handoff-peer");
}

asio::awaitable<handoff_result> run_handoff_floor(handoff_settings s, std::string self_exe)
{
    raw_lock lk(co_await asio::this_coro::executor, s.agent, s.key);
    co_await lk.open();
    co_await lk.acquire(); // this process holds first
    handoff_result r = co_await run_parent(lk, s, self_exe, "handoff-floor-peer");
    co_await lk.close();
    co_return r;
}

int handoff_peer_main(const std::string& agent, const std::string& key, int total_handoffs,
                      std::chrono::milliseconds settle, int fd)
{
    asio::io_context ioc;
    consul::client c(ioc.get_executor(), options_for(agent), bench_logger());
    channel ch{local_socket(ioc, asio::local::stream_protocol(), fd), {}};
    int rc = 0;
    auto body = [&]() -> asio::awaitable<void> {
        colock::lock lk(c, key);
        bool ok = co_await peer_turns(lk, ch, total_handoffs, settle);
        rc = ok ? rc : 1;
        co_await c.shared_session().close();
    };
    asio::co_spawn(ioc, body, [&](std::exception_ptr e) {
        if (e) {
            rc = 1;
        }
    });
    ioc.run();
    return rc;
}

int handoff_floor_peer_main(const std::string& agent, const std::string& key, int total_handoffs,
                            std::chrono::milliseconds settle, int fd)
{
    asio::io_context ioc;
    channel ch{local_socket(ioc, asio::local::stream_protocol(), fd), {}};
    int rc = 0;
    auto body = [&]() -> asio::awaitable<void> {
        raw_lock lk(ioc.get_executor(), agent, key);
        try {
            co_await lk.open();
        } catch (const std::exception& e) {
            tell_failure(ch, e.what()); // else the parent would wait for a "W" that never comes
            rc = 1;
            co_return;
        }
        bool ok = co_await peer_turns(lk, ch, total_handoffs, settle);
        rc = ok ? rc : 1;
        co_await lk.close();
    };
    asio::co_spawn(ioc, body, [&](std::exception_ptr e) {
        if (e) {
            rc = 1;
        }
    });
    ioc.run();
    return rc;
}

} // namespace colock::bench
