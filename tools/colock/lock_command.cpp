#include "lock_command.hpp"

#include "child_process.hpp"
#include "holder.hpp"

#include <colock/consul/client.hpp>
#include <colock/consul/session.hpp>
#include <colock/logger.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <csignal>
#include <cstring>
#include <iostream>
#include <variant>

namespace colock::tool {
namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// consul lock's UI: information on stdout (-verbose only), errors on stderr.
struct ui {
    bool verbose;
    void info(const std::string& line) const
    {
        if (verbose)
            std::cout << line << std::endl;
    }
    static void error(const std::string& line) { std::cerr << line << std::endl; }
};

// Go's wording for a failed child (exec.ExitError's text).
std::string describe_exit(const child_exit& e)
{
    if (e.signalled) {
        const char* name = ::strsignal(e.signal);
        std::string text = name ? name : "signal " + std::to_string(e.signal);
        for (auto& c : text)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return "signal: " + text;
    }
    return "exit status " + std::to_string(e.exit_status);
}

// Passes every further SIGINT / SIGTERM / SIGHUP on to the child until cancelled.
asio::awaitable<void> forward_signals(asio::signal_set& signals, child_process& child)
{
    for (;;) {
        auto [ec, sig] = co_await signals.async_wait(use_tuple);
        if (ec)
            co_return;
        child.send(sig);
    }
}

asio::awaitable<void> sleep_for(std::chrono::nanoseconds d)
{
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(use_tuple);
}

// consul lock's killChild: SIGTERM, up to the grace period for the child to exit (signals keep being
// forwarded meanwhile), then SIGKILL. Unlike consul lock it also waits for the killed child to be
// reaped (bounded), so the lock is released only after the child is gone.
asio::awaitable<void> stop_child(child_process& child, asio::signal_set& signals, const ui& out)
{
    out.info("Terminating child pid " + std::to_string(child.pid()));
    child.send(SIGTERM);
    auto first = co_await (child.wait() || sleep_for(kill_grace_period) || forward_signals(signals, child));
    if (first.index() == 0) {
        out.info("Child terminated");
        co_return;
    }
    out.info("Child did not exit after grace period of " + std::to_string(kill_grace_period.count()) + "s");
    out.info("Killing child pid " + std::to_string(child.pid()));
    child.send(SIGKILL);
    auto killed = co_await (child.wait() || sleep_for(kill_grace_period));
    if (killed.index() != 0)
        ui::error("Failed to kill " + std::to_string(child.pid()) + ": still running after SIGKILL");
}

colock::logger tool_logger(bool verbose)
{
    colock::logger log;
    log.min_level = verbose ? colock::logger::level::info : colock::logger::level::warning;
    log.sink = [](colock::logger::level l, std::string_view line) {
        std::cerr << "colock: " << to_string(l) << ": " << line << std::endl;
    };
    return log;
}

} // namespace

asio::awaitable<int> run_lock_command(const lock_command_options& o)
{
    const ui out{o.verbose};
    auto ex = co_await asio::this_coro::executor;
    // Handlers first, so that a signal during acquisition stops it instead of killing us.
    asio::signal_set signals(ex, SIGINT, SIGTERM, SIGHUP);

    consul::client_options copts;
    try {
        copts = consul::client_options::from_env([&o](std::string_view v) { return o.lookup_env(v); });
    } catch (const boost::system::system_error& e) {
        ui::error(std::string("Error connecting to Consul agent: ") + e.what());
        co_return exit_failure;
    }
    consul::client client(ex, copts, tool_logger(o.verbose));

    // As consul lock: an unreachable agent fails at once, not after the acquisition's retries.
    auto [lec, leader] = co_await client.status_leader({}, use_tuple);
    if (lec) {
        ui::error("Error querying Consul agent: " + lec.message());
        co_return exit_failure;
    }

    consul::session session(client, tool_session_options(o));
    std::unique_ptr<holder> held =
        o.limit == 1 ? make_lock_holder(client, session, o) : make_semaphore_holder(client, session, o);
    out.info("Setting up " + held->describe());

    out.info("Attempting lock acquisition");
    error_code acquired_ec;
    bool stopped = false; // by a signal or -timeout
    if (o.timeout.count() > 0) {
        asio::steady_timer deadline(ex, o.timeout);
        auto r = co_await (held->acquire() || deadline.async_wait(use_tuple) || signals.async_wait(use_tuple));
        if (r.index() == 0)
            acquired_ec = std::get<0>(r);
        else
            stopped = true;
    } else {
        auto r = co_await (held->acquire() || signals.async_wait(use_tuple));
        if (r.index() == 0)
            acquired_ec = std::get<0>(r);
        else
            stopped = true;
    }
    if (stopped || acquired_ec) {
        if (stopped)
            ui::error("Shutdown triggered or timeout during lock acquisition");
        else
            ui::error("Lock acquisition failed: " + acquired_ec.message());
        auto [cec] = co_await session.close(use_tuple);
        (void)cec; // nothing was held; a failed destroy leaves a session that expires with its TTL
        co_return exit_failure;
    }

    const std::uint64_t token = held->fencing_token();
    out.info("Lock acquired with fencing token " + std::to_string(token));
    int child_code = exit_ok;

    out.info("Starting handler");
    error_code spawn_ec;
    const char* shell_var = std::getenv("SHELL");
    auto child = child_process::spawn(
        ex, o.child_argv(shell_var ? std::optional<std::string>(shell_var) : std::nullopt),
        {"CONSUL_LOCK_HELD=true", "COLOCK_FENCING_TOKEN=" + std::to_string(token)}, o.pass_stdin, spawn_ec);
    if (!child) {
        ui::error("Error starting handler: " + spawn_ec.message());
        child_code = exit_child_failed;
    } else {
        if (o.pass_stdin)
            out.info("Stdin passed to handler process");
        // Whichever comes first: the child ends, the hold ends, a signal arrives.
        auto first = co_await (child->wait() || held->lost() || signals.async_wait(use_tuple));
        if (first.index() == 0) {
            const child_exit e = std::get<0>(first);
            if (!e.success()) {
                ui::error("Error running handler: " + describe_exit(e));
                child_code = exit_child_failed;
            }
            out.info("Child terminated, releasing lock");
        } else {
            if (first.index() == 1) {
                out.info("Lock lost (" + std::get<1>(first).message() + "), killing child");
            } else {
                auto [sec, sig] = std::get<2>(first);
                // Forwarded, as consul lock does, before the SIGTERM of stop_child() (which is the
                // forwarded signal itself when that is SIGTERM: the child gets it once, not twice).
                if (sig != SIGTERM)
                    child->send(sig);
                out.info("Shutdown triggered, killing child");
            }
            co_await stop_child(*child, signals, out);
        }
    }

    // Release, then delete the key if nobody uses it (consul lock's cleanup), then end the session.
    int code = o.child_exit_code ? child_code : exit_ok;
    auto rec = co_await held->release();
    if (rec && rec != errc::not_held) {
        ui::error("Lock release failed: " + rec.message());
        code = exit_failure;
    } else {
        std::string message;
        switch (co_await held->cleanup(message)) {
        case cleanup_outcome::removed:
            out.info("Cleanup succeeded");
            break;
        case cleanup_outcome::in_use:
            out.info("Cleanup aborted, lock in use");
            break;
        case cleanup_outcome::failed:
            ui::error("Lock cleanup failed: " + message);
            code = exit_failure;
            break;
        }
    }
    held.reset();
    auto [cec] = co_await session.close(use_tuple);
    if (cec && cec != errc::not_held)
        ui::error("Warning: could not destroy the session: " + cec.message());
    co_return code;
}

} // namespace colock::tool
