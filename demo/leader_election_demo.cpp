// Leader election with colock, end to end: three processes campaign for one Consul lock, the leader
// is killed with SIGKILL, another one takes over with a larger fencing token, and the failover time
// is measured and explained (session TTL, lock-delay).
//
//     scripts/demo                   builds colock and runs this program
//     leader_election_demo           the driver: starts a Consul dev agent (the test harness) and three
//                                    candidates, kills the leader, explains what happened, stops all
//
// A candidate is the interesting part and only a few lines of colock (campaign() below): being the
// leader = holding a colock::lock on one key. The driver is plumbing: it starts the processes, reads
// the one-line reports they print on stdout and explains them.
//
// Exit status: 0 when everything went as explained, 1 on any failure (with a message saying what),
// 77 when no Consul binary can be had outside CI (the harness prints SKIP and why).

#include <colock/colock.hpp>

#include "consul_agent.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

// The session settings of every candidate. A crashed leader is replaced within 2 x TTL + lock-delay
// of its last renewal; Consul's default lock-delay (15 s) would make the demo wait for it.
constexpr milliseconds session_ttl = 2s;
constexpr milliseconds lock_delay = 1s;

// Nanoseconds on the monotonic clock. steady_clock is CLOCK_MONOTONIC on Linux, one clock for every
// process on the machine, so the driver can subtract the times candidates report from its own.
std::int64_t to_ns(clock_type::time_point t)
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

double seconds_between(std::int64_t from_ns, std::int64_t to)
{
    return static_cast<double>(to - from_ns) / 1e9;
}

double in_seconds(milliseconds d)
{
    return std::chrono::duration<double>(d).count();
}

// ================================================================================================
// The candidate: campaigns for leadership by acquiring the lock, leads while it holds it.
// ================================================================================================

struct candidate_settings {
    std::string name;
    std::string host;
    std::uint16_t port = 0;
    std::string key;
};

// One line per event on stdout, read by the driver.
void report(const std::string& line)
{
    std::fputs(line.c_str(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

struct candidate_state {
    asio::cancellation_signal stop; // cancels the pending acquire() or lost() on SIGTERM
    bool stopping = false;
};

// Reports each successful renewal of the session (sent every TTL/2), seen as the hold's fail-safe
// deadline moving forward, at most 10 ms late: Consul's TTL timer restarts at the renewal, which is
// what the driver needs to explain the failover time.
asio::awaitable<void> report_renewals(colock::lock& lock)
{
    asio::steady_timer timer(co_await asio::this_coro::executor);
    auto last = lock.deadline();
    while (lock.is_held()) {
        timer.expires_after(10ms);
        co_await timer.async_wait(asio::use_awaitable);
        const auto deadline = lock.deadline();
        if (lock.is_held() && deadline != last) {
            last = deadline;
            report("renewed " + std::to_string(to_ns(clock_type::now())));
        }
    }
}

asio::awaitable<int> campaign(colock::lock& lock, candidate_state& state)
{
    report("campaigning");
    // Waits while another process leads: colock follows the key with a blocking query and tries
    // again as soon as the key is free (and retries briefly while Consul's lock-delay runs).
    auto acquire_token = asio::bind_cancellation_slot(state.stop.slot(), asio::as_tuple(asio::use_awaitable));
    auto [acquire_error] = co_await lock.acquire(acquire_token);
    if (acquire_error) {
        if (state.stopping && acquire_error == asio::error::operation_aborted) {
            report("stopped");
            co_return 0;
        }
        report("error acquire failed: " + acquire_error.message());
        co_return 1;
    }

    // Leader. The fencing token goes with every action on the protected resource, which refuses
    // tokens smaller than the largest it has seen: a late write by a deposed leader is then harmless.
    const auto session = lock.session_id().value_or(colock::consul::session_id());
    report("leader " + std::to_string(lock.fencing_token()) + " " + session.str() + " " +
           std::to_string(to_ns(clock_type::now())));
    auto executor = co_await asio::this_coro::executor;
    asio::co_spawn(executor, report_renewals(lock), asio::detached);

    if (!state.stopping) {
        // A real leader would race its work against this: `co_await (work() || lock.lost(use_awaitable))`.
        auto lost_token = asio::bind_cancellation_slot(state.stop.slot(), asio::as_tuple(asio::use_awaitable));
        auto [wait_error, why] = co_await lock.lost(lost_token);
        if (!state.stopping && !wait_error) {
            report("lost " + std::to_string(to_ns(clock_type::now())) + " " + why.message());
            co_return 3;
        }
    }
    // Stopping cleanly: an explicit release frees the key at once, without TTL or lock-delay.
    auto release_token = asio::as_tuple(asio::use_awaitable);
    auto [release_error] = co_await lock.release(release_token);
    if (release_error) {
        report("error release failed: " + release_error.message());
        co_return 1;
    }
    report("released " + std::to_string(to_ns(clock_type::now())));
    co_return 0;
}

int run_candidate(const candidate_settings& settings)
{
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    asio::io_context ioc;
    colock::consul::client_options client_settings;
    client_settings.host = settings.host;
    client_settings.port = settings.port;
    colock::consul::client consul(ioc.get_executor(), client_settings);

    // A session of the lock's own, without health checks: only its TTL decides when a dead leader's
    // lock is given up.
    auto options = colock::lock_options::with_own_session(session_ttl, lock_delay);
    options.value = settings.name; // the key's value names the leader, for anyone who reads it
    options.own_session->name = "colock demo: " + settings.name;
    colock::lock lock(consul, settings.key, options);

    candidate_state state;
    asio::signal_set signals(ioc, SIGTERM, SIGINT);
    auto on_signal = [&state](boost::system::error_code ec, int) {
        if (!ec) {
            state.stopping = true;
            state.stop.emit(asio::cancellation_type::terminal);
        }
    };
    signals.async_wait(on_signal);

    int exit_code = 1;
    bool finished = false;
    auto on_done = [&](std::exception_ptr e, int code) {
        finished = true;
        exit_code = code;
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                report(std::string("error ") + ex.what());
            }
            exit_code = 1;
        }
        signals.cancel();
    };
    asio::co_spawn(ioc, campaign(lock, state), on_done);
    // Bounded even if the driver is gone without a signal (it normally stops candidates in seconds).
    const auto give_up = clock_type::now() + 120s;
    while (!finished && ioc.run_one_until(give_up) != 0) {
    }
    if (!finished) {
        report("error still running after 120 s");
        std::fflush(nullptr);
        std::_Exit(1);
    }
    ioc.run_for(5s); // background work after the release (destroying the session); returns when none is left
    return exit_code;
}

// ================================================================================================
// The driver: starts Consul and the candidates, kills the leader, measures and explains.
// ================================================================================================

const clock_type::time_point demo_start = clock_type::now();

struct demo_failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// "[ 1.23 s] text": every line of the story carries the time since the demo started.
void say(const char* format, ...) __attribute__((format(printf, 1, 2)));
void say(const char* format, ...)
{
    std::printf("[%6.2f s] ", std::chrono::duration<double>(clock_type::now() - demo_start).count());
    va_list args;
    va_start(args, format);
    std::vprintf(format, args);
    va_end(args);
    std::printf("\n");
    std::fflush(stdout);
}

void note(const char* format, ...) __attribute__((format(printf, 1, 2)));
void note(const char* format, ...)
{
    std::printf("           ");
    va_list args;
    va_start(args, format);
    std::vprintf(format, args);
    va_end(args);
    std::printf("\n");
    std::fflush(stdout);
}

std::vector<std::string> split_words(const std::string& line, std::size_t max_words)
{
    std::vector<std::string> words;
    std::size_t pos = 0;
    while (pos < line.size() && words.size() + 1 < max_words) {
        auto space = line.find(' ', pos);
        if (space == std::string::npos) {
            break;
        }
        words.push_back(line.substr(pos, space - pos));
        pos = space + 1;
    }
    words.push_back(line.substr(pos));
    return words;
}

struct candidate_process {
    std::string name;
    pid_t pid = -1;
    int out = -1; // read ends of its stdout (reports) and stderr (library warnings)
    int err = -1;
    std::string out_buffer;
    std::string err_buffer;
    bool exited = false;
    int status = 0;
    bool exit_expected = false; // killed by us, or asked to stop

    // What it reported.
    bool campaigning = false;
    std::uint64_t fencing_token = 0;
    std::string session;
    std::int64_t acquired_ns = 0;
    int renewals = 0;
    std::int64_t renewed_ns = 0; // when it last saw its session renewed
    bool released = false;
    std::int64_t released_ns = 0;
    bool stopped = false;

    bool is_leader() const { return fencing_token != 0 && !released && !exited; }
};

class driver {
public:
    explicit driver(colock::test::consul_agent& agent) : agent_(agent)
    {
        key_ = "colock-demo/" + std::to_string(::getpid()) + "/leader";
    }
    driver(const driver&) = delete;
    driver& operator=(const driver&) = delete;
    ~driver() { kill_all(); }

    int run();
    void kill_all() noexcept;

private:
    void spawn(const std::string& name);
    void pump(clock_type::time_point deadline);
    void read_from(candidate_process& c, int& fd, std::string& buffer, bool is_stdout);
    void handle_report(candidate_process& c, const std::string& line);
    void reap();
    void wait_until(const std::function<bool()>& done, clock_type::duration timeout, const std::string& what);
    candidate_process* leader();
    void show_consul_view(const candidate_process& leader);
    std::optional<std::int64_t> watch_until_freed(std::string session, std::string index,
                                                  clock_type::time_point deadline);
    std::string key_index();

    colock::test::consul_agent& agent_;
    std::string key_;
    std::vector<candidate_process> candidates_;
};

void driver::spawn(const std::string& name)
{
    int out[2];
    int err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
        throw demo_failure(std::string("pipe2 failed: ") + std::strerror(errno));
    }
    // Everything the child needs is built before fork: between fork and exec only async-signal-safe calls.
    std::vector<std::string> args = {"/proc/self/exe",  "--candidate",      name, agent_.host(),
                                     std::to_string(agent_.http_port()), key_};
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
        throw demo_failure(std::string("fork failed: ") + std::strerror(errno));
    }
    if (pid == 0) {
        // A candidate dies with the driver, however the driver ends.
        if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) {
            ::_exit(127);
        }
        if (::dup2(out[1], 1) < 0 || ::dup2(err[1], 2) < 0) {
            ::_exit(127);
        }
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    candidate_process c;
    c.name = name;
    c.pid = pid;
    c.out = out[0];
    c.err = err[0];
    candidates_.push_back(std::move(c));
}

void driver::kill_all() noexcept
{
    for (auto& c : candidates_) {
        if (!c.exited && c.pid > 0) {
            ::kill(c.pid, SIGKILL);
            while (::waitpid(c.pid, &c.status, 0) < 0 && errno == EINTR) {
            }
            c.exited = true;
        }
        for (int* fd : {&c.out, &c.err}) {
            if (*fd >= 0) {
                ::close(*fd);
                *fd = -1;
            }
        }
    }
}

void driver::handle_report(candidate_process& c, const std::string& line)
{
    auto words = split_words(line, 4);
    const std::string& what = words[0];
    try {
        if (what == "campaigning") {
            c.campaigning = true;
        } else if (what == "leader" && words.size() == 4) {
            c.fencing_token = std::stoull(words[1]);
            c.session = words[2];
            c.acquired_ns = std::stoll(words[3]);
        } else if (what == "renewed" && words.size() == 2) {
            c.renewed_ns = std::stoll(words[1]);
            ++c.renewals;
        } else if (what == "released" && words.size() == 2) {
            c.released = true;
            c.released_ns = std::stoll(words[1]);
        } else if (what == "stopped") {
            c.stopped = true;
        } else if (what == "lost") {
            auto reason = split_words(line, 3);
            throw demo_failure(c.name + " lost its leadership unexpectedly: " +
                               (reason.size() == 3 ? reason[2] : line));
        } else if (what == "error") {
            throw demo_failure(c.name + ": " + line.substr(std::min<std::size_t>(line.size(), 6)));
        } else {
            note("%s says: %s", c.name.c_str(), line.c_str());
        }
    } catch (const std::logic_error&) { // std::stoull and friends
        throw demo_failure(c.name + " reported a malformed line: '" + line + "'");
    }
}

void driver::read_from(candidate_process& c, int& fd, std::string& buffer, bool is_stdout)
{
    char chunk[4096];
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) {
            return;
        }
        throw demo_failure("reading from " + c.name + " failed: " + std::strerror(errno));
    }
    if (n == 0) {
        ::close(fd);
        fd = -1;
        if (!buffer.empty()) {
            buffer += '\n'; // a last line without newline still counts
        }
    } else {
        buffer.append(chunk, static_cast<std::size_t>(n));
    }
    for (auto newline = buffer.find('\n'); newline != std::string::npos; newline = buffer.find('\n')) {
        std::string line = buffer.substr(0, newline);
        buffer.erase(0, newline + 1);
        if (is_stdout) {
            handle_report(c, line);
        } else if (!line.empty()) {
            note("(%s, stderr) %s", c.name.c_str(), line.c_str());
        }
    }
}

void driver::reap()
{
    for (auto& c : candidates_) {
        if (c.exited || c.out >= 0 || c.err >= 0) {
            continue; // still running, or its output is not fully read yet
        }
        const pid_t r = ::waitpid(c.pid, &c.status, WNOHANG);
        if (r != c.pid) {
            continue;
        }
        c.exited = true;
        if (!c.exit_expected) {
            std::string how = WIFEXITED(c.status) ? "exited with status " + std::to_string(WEXITSTATUS(c.status))
                                                  : "was killed by signal " + std::to_string(WTERMSIG(c.status));
            throw demo_failure(c.name + " (pid " + std::to_string(c.pid) + ") " + how + " unexpectedly");
        }
    }
}

// Reads what the candidates report until `deadline` or until something arrives.
void driver::pump(clock_type::time_point deadline)
{
    std::vector<pollfd> fds;
    std::vector<std::pair<candidate_process*, bool>> owners; // candidate, is_stdout
    for (auto& c : candidates_) {
        if (c.out >= 0) {
            fds.push_back({c.out, POLLIN, 0});
            owners.emplace_back(&c, true);
        }
        if (c.err >= 0) {
            fds.push_back({c.err, POLLIN, 0});
            owners.emplace_back(&c, false);
        }
    }
    // A process whose pipes are closed is reaped on the next round; poll at most 50 ms at a time for it.
    auto left = std::chrono::duration_cast<milliseconds>(deadline - clock_type::now());
    const int timeout_ms = static_cast<int>(std::clamp<milliseconds::rep>(left.count(), 0, 50));
    const int ready = ::poll(fds.data(), fds.size(), timeout_ms);
    if (ready < 0 && errno != EINTR) {
        throw demo_failure(std::string("poll failed: ") + std::strerror(errno));
    }
    for (std::size_t i = 0; ready > 0 && i < fds.size(); ++i) {
        if (fds[i].revents != 0) {
            auto& [c, is_stdout] = owners[i];
            if (is_stdout) {
                read_from(*c, c->out, c->out_buffer, true);
            } else {
                read_from(*c, c->err, c->err_buffer, false);
            }
        }
    }
    reap();
}

void driver::wait_until(const std::function<bool()>& done, clock_type::duration timeout, const std::string& what)
{
    const auto start = clock_type::now();
    const auto deadline = start + timeout;
    while (!done()) {
        if (clock_type::now() >= deadline) {
            char took[32];
            std::snprintf(took, sizeof took, "%.1f s", std::chrono::duration<double>(timeout).count());
            throw demo_failure("gave up after " + std::string(took) + " waiting for " + what);
        }
        pump(deadline);
    }
}

candidate_process* driver::leader()
{
    for (auto& c : candidates_) {
        if (c.is_leader()) {
            return &c;
        }
    }
    return nullptr;
}

// Reads the key straight from Consul's HTTP API, to show that Consul agrees on who leads.
void driver::show_consul_view(const candidate_process& leader)
{
    auto reply = agent_.request("GET", "/v1/kv/" + key_);
    if (reply.status != 200) {
        throw demo_failure("GET /v1/kv/" + key_ + " answered " + std::to_string(reply.status) + ": " + reply.body);
    }
    auto entries = boost::json::parse(reply.body);
    const auto& entry = entries.as_array().at(0).as_object();
    const auto* session = entry.if_contains("Session");
    const std::string holder = session && session->is_string() ? std::string(session->as_string()) : "";
    if (holder != leader.session) {
        throw demo_failure("Consul says the key is held by session '" + holder + "', not by " + leader.name +
                           "'s session " + leader.session);
    }
    auto value = agent_.request("GET", "/v1/kv/" + key_ + "?raw");
    note("Consul agrees: key %s is locked by %s's session %.8s..., value \"%s\"", key_.c_str(),
         leader.name.c_str(), holder.c_str(), value.body.c_str());
}

// The key's current X-Consul-Index, the starting point of a blocking query on it.
std::string driver::key_index()
{
    auto reply = agent_.request("GET", "/v1/kv/" + key_);
    auto index = reply.header("x-consul-index");
    if (reply.status != 200 || index.empty()) {
        throw demo_failure("GET /v1/kv/" + key_ + " answered " + std::to_string(reply.status) +
                           " without X-Consul-Index");
    }
    return index;
}

// Follows the key with blocking queries (each wakes within milliseconds of a change) until `session`
// no longer holds it; returns when that was seen, on the monotonic clock.
std::optional<std::int64_t> driver::watch_until_freed(std::string session, std::string index,
                                                      clock_type::time_point deadline)
{
    while (clock_type::now() < deadline) {
        colock::test::http_reply reply;
        try {
            reply = agent_.request("GET", "/v1/kv/" + key_ + "?index=" + index + "&wait=2s", {}, {}, 5000ms);
        } catch (const std::exception&) {
            std::this_thread::sleep_for(20ms); // transport trouble: try again until the deadline
            continue;
        }
        const auto seen = to_ns(clock_type::now());
        if (reply.status == 404) {
            return seen;
        }
        if (reply.status != 200) {
            std::this_thread::sleep_for(20ms);
            continue;
        }
        auto entries = boost::json::parse(reply.body);
        const auto* first = entries.is_array() && !entries.as_array().empty() ? &entries.as_array()[0] : nullptr;
        const auto* holder = first && first->is_object() ? first->as_object().if_contains("Session") : nullptr;
        if (holder == nullptr || !holder->is_string() || holder->as_string() != session) {
            return seen;
        }
        index = reply.header("x-consul-index");
    }
    return std::nullopt;
}

int driver::run()
{
    const double ttl_s = in_seconds(session_ttl);
    const double delay_s = in_seconds(lock_delay);

    // ---- three candidates ---------------------------------------------------------------------------------
    const std::array<std::string, 3> names = {"alpha", "bravo", "charlie"};
    say("Starting three candidate processes: %s, %s and %s.", names[0].c_str(), names[1].c_str(),
        names[2].c_str());
    note("Each one runs colock and tries to lock the key %s.", key_.c_str());
    note("Whoever holds the lock is the leader. Each lock has its own Consul session: TTL %.0f s, lock-delay %.0f s.",
         ttl_s, delay_s);
    for (const auto& name : names) {
        spawn(name);
    }
    wait_until(
        [&] {
            return leader() != nullptr &&
                   std::all_of(candidates_.begin(), candidates_.end(), [](auto& c) { return c.campaigning; });
        },
        20s, "the candidates to start and one of them to become the leader");
    candidate_process* first = leader();
    const std::string first_name = first->name;
    const std::uint64_t first_token = first->fencing_token;
    say("%s (pid %d) is the leader, with fencing token %llu.", first->name.c_str(), first->pid,
        static_cast<unsigned long long>(first->fencing_token));
    show_consul_view(*first);
    std::vector<std::string> waiting;
    for (auto& c : candidates_) {
        if (&c != first) {
            waiting.push_back(c.name);
        }
    }
    note("%s and %s wait: they follow the key with a blocking query and try again when it is free.",
         waiting[0].c_str(), waiting[1].c_str());

    // ---- kill the leader right after a renewal: the worst case, its session then lives longest -----------
    const int renewals_before = first->renewals;
    wait_until([&] { return first->renewals > renewals_before; }, session_ttl + 2s,
               "the leader's session to be renewed (renewals run every TTL/2)");
    const std::int64_t last_renewal_ns = first->renewed_ns;
    const std::string index = key_index();
    const std::string first_session = first->session;
    const pid_t first_pid = first->pid;
    first->exit_expected = true;
    const std::int64_t kill_ns = to_ns(clock_type::now());
    if (::kill(first_pid, SIGKILL) != 0) {
        throw demo_failure("kill(" + std::to_string(first_pid) + ", SIGKILL) failed: " + std::strerror(errno));
    }
    say("%s just renewed its session. Killing it now with SIGKILL (pid %d): no clean shutdown, no release of",
        first_name.c_str(), first_pid);
    note("the lock; Consul only notices that renewals stop. Right after a renewal is the worst moment for a crash:");
    note("the session then stays valid longest.");

    // Consul's view of the key, in parallel: when does the dead leader's session stop holding it?
    const auto failover_deadline = clock_type::now() + 2 * session_ttl + lock_delay + 15s;
    auto freed = std::async(std::launch::async, [this, first_session, index, failover_deadline] {
        return watch_until_freed(first_session, index, failover_deadline);
    });
    candidate_process* second = nullptr;
    wait_until(
        [&] {
            for (auto& c : candidates_) {
                if (c.name != first_name && c.is_leader()) {
                    second = &c;
                }
            }
            return second != nullptr;
        },
        failover_deadline - clock_type::now(), "a new leader after the kill");
    if (freed.wait_until(failover_deadline) != std::future_status::ready) {
        throw demo_failure("Consul did not show the key free of " + first_name + "'s session in time");
    }
    const std::optional<std::int64_t> freed_ns = freed.get();
    const double failover_s = seconds_between(kill_ns, second->acquired_ns);
    say("%s (pid %d) is the new leader, with fencing token %llu.", second->name.c_str(), second->pid,
        static_cast<unsigned long long>(second->fencing_token));
    show_consul_view(*second);
    if (second->fencing_token <= first_token) {
        throw demo_failure("the new leader's fencing token " + std::to_string(second->fencing_token) +
                           " is not larger than the old one's, " + std::to_string(first_token));
    }
    note("Fencing token %llu > %llu: a resource that refuses tokens below the largest it has seen",
         static_cast<unsigned long long>(second->fencing_token), static_cast<unsigned long long>(first_token));
    note("would refuse a late write from %s, had it only been paused instead of killed.", first_name.c_str());

    std::printf("\n");
    say("Failover took %.2f s (from the SIGKILL to the new leader holding the lock; monotonic clock). Why:",
        failover_s);
    const double since_renewal = seconds_between(last_renewal_ns, kill_ns);
    const double expected_free = 2 * ttl_s - since_renewal;
    note("1. %s last renewed its session %.3f s before it was killed (renewals are sent every TTL/2 = %.1f s).",
         first_name.c_str(), since_renewal, ttl_s / 2);
    note("2. Consul keeps a session at least its TTL after the last renewal and invalidates it within 2 x TTL");
    if (freed_ns) {
        note("   (%.1f s; in practice the full 2 x TTL): expected %.2f s after the kill, seen at %.2f s.",
             2 * ttl_s, expected_free, seconds_between(kill_ns, *freed_ns));
    } else {
        note("   (%.1f s; in practice the full 2 x TTL): expected %.2f s after the kill.", 2 * ttl_s,
             expected_free);
    }
    note("   Then the key is free, but:");
    note("3. lock-delay: after invalidating a session Consul refuses to lock its keys for %.1f s, so that", delay_s);
    note("   whatever the dead leader still had in flight can drain. Earliest new leader: %.2f s after the kill.",
         expected_free + delay_s);
    note("4. %s, already waiting, took the lock at %.2f s (retries during lock-delay use a short, jittered",
         second->name.c_str(), failover_s);
    note("   backoff, then one write).");
    note("So a crashed leader is replaced 2 x TTL + lock-delay = %.1f s after its last renewal at the latest, plus",
         2 * ttl_s + delay_s);
    note("at most %.2f s of retry backoff. A smaller TTL fails over faster but renews more often. A leader that",
         in_seconds(colock::lock_options().lock_delay_retry_max));
    note("stops cleanly releases the lock: no TTL, no lock-delay, as the next step shows.");

    // ---- a clean stop for comparison: release hands over at once ----------------------------------------------
    std::printf("\n");
    candidate_process* third = nullptr;
    for (auto& c : candidates_) {
        if (&c != second && c.name != first_name) {
            third = &c;
        }
    }
    say("Stopping %s cleanly (SIGTERM): it releases the lock.", second->name.c_str());
    second->exit_expected = true;
    const std::int64_t term_ns = to_ns(clock_type::now());
    ::kill(second->pid, SIGTERM);
    wait_until([&] { return second->exited && third->fencing_token != 0; }, 10s,
               second->name + " to release and " + third->name + " to take over");
    if (third->fencing_token <= second->fencing_token) {
        throw demo_failure("the third leader's fencing token is not larger than the second one's");
    }
    say("%s (pid %d) is the leader, with fencing token %llu: handover %.3f s after the SIGTERM, no lock-delay.",
        third->name.c_str(), third->pid, static_cast<unsigned long long>(third->fencing_token),
        seconds_between(term_ns, third->acquired_ns));

    // ---- stop everything we started ------------------------------------------------------------------------
    third->exit_expected = true;
    ::kill(third->pid, SIGTERM);
    wait_until([&] { return third->exited; }, 10s, third->name + " to stop");
    for (auto* c : {second, third}) {
        if (!WIFEXITED(c->status) || WEXITSTATUS(c->status) != 0 || !c->released) {
            throw demo_failure(c->name + " did not release the lock and exit 0 when asked to stop");
        }
    }
    wait_until([&] { return candidates_.end() == std::find_if(candidates_.begin(), candidates_.end(),
                                                              [](auto& c) { return !c.exited; }); },
               5s, "every candidate to be gone");
    say("All candidates stopped. Stopping the Consul agent.");
    agent_.stop();

    std::printf("\nSummary\n");
    std::printf("  leader 1: %-8s fencing token %-6llu killed with SIGKILL right after a session renewal\n",
                first_name.c_str(), static_cast<unsigned long long>(first_token));
    std::printf("  leader 2: %-8s fencing token %-6llu failover %.2f s after the kill "
                "(2 x TTL + lock-delay = %.1f s)\n",
                second->name.c_str(), static_cast<unsigned long long>(second->fencing_token), failover_s,
                2 * ttl_s + delay_s);
    std::printf("  leader 3: %-8s fencing token %-6llu handover %.3f s after a clean stop (release)\n",
                third->name.c_str(), static_cast<unsigned long long>(third->fencing_token),
                seconds_between(term_ns, third->acquired_ns));
    std::fflush(stdout);
    return 0;
}

int run_driver()
{
    std::printf("colock demo: leader election on Consul\n"
                "======================================\n"
                "Three processes elect a leader by holding a Consul lock; the leader is killed with SIGKILL and\n"
                "the measured failover to a new leader is explained. Each leader gets a fencing token, a number\n"
                "that grows with every new leader, to pass to whatever it protects.\n\n");
    say("Starting a local Consul dev agent (the test harness: free loopback ports, session TTLs from 1 s).");
    std::fflush(stdout);
    auto& agent = colock::test::consul_agent::instance(); // exits 77 (SKIP) without a consul binary outside CI
    say("%s is ready at %s.", agent.version().c_str(), agent.http_address().c_str());
    driver d(agent);
    try {
        return d.run();
    } catch (...) {
        d.kill_all();
        agent.stop();
        throw;
    }
}

int usage()
{
    std::fprintf(stderr, "usage: leader_election_demo      (the demo: starts Consul and three candidates)\n"
                         "       leader_election_demo --candidate <name> <agent host> <agent port> <key>\n");
    return 2;
}

} // namespace

int main(int argc, char** argv)
{
    try {
        if (argc == 1) {
            return run_driver();
        }
        if (argc == 6 && std::string(argv[1]) == "--candidate") {
            candidate_settings settings;
            settings.name = argv[2];
            settings.host = argv[3];
            settings.port = static_cast<std::uint16_t>(std::stoul(argv[4]));
            settings.key = argv[5];
            return run_candidate(settings);
        }
        return usage();
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "leader_election_demo: FAILED: %s\n", e.what());
        return 1;
    }
}
