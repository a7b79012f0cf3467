#include "handoff.hpp"

#include <colock/consul/session.hpp>
#include <colock/lock.hpp>

#include "log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <vector>

#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>

extern char** environ;

namespace colock::bench {

namespace asio = boost::asio;
using local_socket = asio::local::stream_protocol::socket;

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

// Handoff h (0-based) goes from the first holder to the other when h is even, back when odd.
asio::awaitable<void> alternate(colock::lock& lk, channel& ch, stamps& log, int total, bool first_holder,
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

consul::client_options options_for(const std::string& agent)
{
    consul::client_options o;
    auto colon = agent.rfind(':');
    if (colon == std::string::npos) {
        throw std::runtime_error("--agent wants host:port, got '" + agent + "'");
    }
    o.host = agent.substr(0, colon);
    o.port = static_cast<std::uint16_t>(std::stoul(agent.substr(colon + 1)));
    return o;
}

int even_total(const handoff_settings& s)
{
    int total = s.warmup + s.handoffs;
    return total + (total % 2);
}

// Starts the peer with its end of the socket pair as fd 3; returns its pid.
pid_t spawn_peer(const std::string& self_exe, const handoff_settings& s, int total, int peer_fd)
{
    std::vector<std::string> args = {self_exe, "--role", "handoff-peer", "--agent", s.agent, "--key", s.key,
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
asio::awaitable<void> parent_turns(colock::lock& lk, channel& ch, stamps& log, int total,
                                   std::chrono::milliseconds settle)
{
    co_await alternate(lk, ch, log, total, true, settle);
    co_await lk.release(); // the last handoff came back to this process
    co_await await_line(ch, log, 'D');
}

} // namespace

asio::awaitable<handoff_result> run_handoff(consul::client& c, handoff_settings s, std::string self_exe)
{
    auto ex = co_await asio::this_coro::executor;
    const int total = even_total(s);

    colock::lock lk(c, s.key);
    co_await lk.acquire(); // this process holds first

    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        throw std::runtime_error("handoff: socketpair failed");
    }
    pid_t pid = -1;
    try {
        pid = spawn_peer(self_exe, s, total, sv[1]);
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

int handoff_peer_main(const std::string& agent, const std::string& key, int total_handoffs,
                      std::chrono::milliseconds settle, int fd)
{
    asio::io_context ioc;
    consul::client c(ioc.get_executor(), options_for(agent), bench_logger());
    channel ch{local_socket(ioc, asio::local::stream_protocol(), fd), {}};
    int rc = 0;
    auto body = [&]() -> asio::awaitable<void> {
        try {
            colock::lock lk(c, key);
            stamps log;
            co_await alternate(lk, ch, log, total_handoffs, false, settle);
            co_await ch.write_line("D");
        } catch (const std::exception& e) {
            rc = 1;
            std::fprintf(stderr, "handoff peer: %s\n", e.what());
            std::string msg = std::string("E ") + e.what();
            for (auto& ch_ : msg) {
                ch_ = ch_ == '\n' ? ' ' : ch_;
            }
            boost::system::error_code ec;
            asio::write(ch.sock, asio::buffer(msg + "\n"), ec);
        }
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

} // namespace colock::bench
