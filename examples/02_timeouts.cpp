// Timeouts and cancellation: a second client waits for a lock the first one holds, gives up after
// a while, and is left without the lock. On Boost 1.81 there is no asio::cancel_after; a timeout is
// a timer that cancels the operation, either with awaitable_operators' `||` or with a
// cancellation signal bound to the operation. Run it against an agent:
//
//     CONSUL_HTTP_ADDR=127.0.0.1:8500 ./02_timeouts
//
// It exits with 0 only when each step did what the comments say.

#include <colock/colock.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <iostream>
#include <stdexcept>
#include <string>
#include <unistd.h>

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using namespace colock::consul;
using namespace std::chrono_literals;

// Stops the example with an error when what it demonstrates did not happen.
void check(bool ok, const char* what)
{
    if (!ok)
        throw std::runtime_error(std::string("expected: ") + what);
}

asio::awaitable<void> release_after(colock::lock& lock, std::chrono::milliseconds delay)
{
    asio::steady_timer timer(co_await asio::this_coro::executor, delay);
    co_await timer.async_wait(asio::use_awaitable);
    co_await lock.release();
}

// Two clients stand for two processes: each has its own session, so Consul lets only one of them
// hold the key.
asio::awaitable<void> demo(client& first, client& second)
{
    const std::string prefix = "colock-examples/" + std::to_string(::getpid()) + "/";
    const std::string key = prefix + "schema-migration";
    auto ex = co_await asio::this_coro::executor;

    colock::lock holder(first, key);
    co_await holder.acquire();
    std::cout << "first client holds " << key << '\n';

    colock::lock waiter(second, key);

    // 1. A timeout with `||`: both sides run, the first to finish wins and the other is cancelled.
    //    The operands must be awaitables, hence asio::use_awaitable. Note that `||` waits for the
    //    first *successful* operand: an acquire that fails with an error lets the timer run out.
    asio::steady_timer timer(ex, 500ms);
    auto winner = co_await (waiter.acquire(asio::use_awaitable) || timer.async_wait(asio::use_awaitable));
    check(winner.index() == 1, "the timer wins while the first client holds the lock");
    check(!waiter.is_held(), "a timed-out acquire leaves the lock not held");
    std::cout << "second client: gave up after 500 ms (timeout with ||)\n";

    // 2. The same with a cancellation signal: anything can emit it (a timer here, a shutdown
    //    request in a server). The lock is never left held by a cancelled acquire: if its write won
    //    the race, the lock is released before acquire() completes with operation_aborted.
    asio::cancellation_signal give_up;
    timer.expires_after(300ms);
    timer.async_wait([&](boost::system::error_code ec) {
        if (!ec)
            give_up.emit(asio::cancellation_type::terminal);
    });
    // as_tuple: the error comes back as a value instead of an exception.
    auto cancellable = asio::bind_cancellation_slot(give_up.slot(), asio::as_tuple(asio::use_awaitable));
    auto [ec] = co_await waiter.acquire(cancellable);
    timer.cancel();
    check(ec == asio::error::operation_aborted, "the cancelled acquire completes with operation_aborted");
    check(!waiter.is_held(), "a cancelled acquire leaves the lock not held");
    std::cout << "second client: acquire cancelled after 300 ms (" << ec.message() << ")\n";

    // 3. Waiting is optional: try_acquire() asks once. Contention is not an error, just `false`.
    bool got = co_await waiter.try_acquire();
    check(!got, "try_acquire answers false while the first client holds the lock");
    std::cout << "second client: try_acquire() -> false\n";

    // Consul agrees that nothing changed: the first client's session still holds the key.
    kv_get_result seen = co_await second.kv_get(key);
    check(seen.entry && seen.entry->session && seen.entry->session == holder.session_id(),
          "the key is still held by the first client");

    // 4. A bounded wait that succeeds: the first client releases after 200 ms, well within the
    //    5 s the second one is ready to wait. A blocking query on the key wakes the waiter.
    asio::co_spawn(ex, release_after(holder, 200ms), [](std::exception_ptr e) {
        if (e)
            std::rethrow_exception(e);
    });
    timer.expires_after(5s);
    winner = co_await (waiter.acquire(asio::use_awaitable) || timer.async_wait(asio::use_awaitable));
    check(winner.index() == 0 && waiter.is_held(), "the second client gets the lock once it is released");
    std::cout << "second client: acquired after the first released, fencing token " << waiter.fencing_token()
              << '\n';
    co_await waiter.release();

    // Leave nothing behind: our keys, then both shared sessions.
    co_await first.kv_delete(prefix, kv_delete_options::recursive());
    co_await first.shared_session().close();
    co_await second.shared_session().close();
    std::cout << "done\n";
}

int main()
{
    try {
        asio::io_context ioc;
        client first(ioc.get_executor(), client_options::from_env());
        client second(ioc.get_executor(), client_options::from_env());
        bool finished = false;
        asio::co_spawn(ioc, demo(first, second), [&](std::exception_ptr e) {
            if (e)
                std::rethrow_exception(e); // out of run_for(), into the catch below
            finished = true;
        });
        // A deadline, so that the example never hangs. run_for() returns early once all work is
        // done, background clean-up included.
        ioc.run_for(60s);
        if (!finished || !ioc.stopped()) {
            std::cerr << "error: still busy after 60 s\n";
            return 1;
        }
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << '\n';
        return 1;
    }
}
