// Handling a lost lock. A lock can be lost while held: someone deletes its key, an operator
// destroys its session, the session expires because renewals could not get through. The holder
// races its work against lock.lost(), which completes with the reason, stops the work, and then
// acquires again. Here a second client provokes both kinds of loss. Run it against an agent:
//
//     CONSUL_HTTP_ADDR=127.0.0.1:8500 ./05_lost_lock
//
// It exits with 0 only when each loss stopped the work, was reported with a reason, and the lock
// could be taken again, with a larger fencing token.

#include <colock/colock.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <iostream>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <variant>

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

// Long work done while holding the lock: steps of 100 ms for up to 20 s. It only ends early when it
// is cancelled, which is what `||` does when the lock is lost first.
asio::awaitable<void> work(std::uint64_t fencing_token)
{
    asio::steady_timer step(co_await asio::this_coro::executor);
    for (int i = 0; i < 200; ++i) {
        step.expires_after(100ms);
        co_await step.async_wait(asio::use_awaitable);
    }
    std::cout << "work with token " << fencing_token << " finished\n";
}

// The trouble, caused by a second client a moment after the lock was taken: as in real life, the
// loss comes from outside.
asio::awaitable<void> delete_key_soon(client& other, std::string key)
{
    asio::steady_timer timer(co_await asio::this_coro::executor, 300ms);
    co_await timer.async_wait(asio::use_awaitable);
    std::cout << "second client: deleting " << key << '\n';
    co_await other.kv_delete(key);
}

asio::awaitable<void> destroy_session_soon(client& other, session_id id)
{
    asio::steady_timer timer(co_await asio::this_coro::executor, 300ms);
    co_await timer.async_wait(asio::use_awaitable);
    std::cout << "second client: destroying session " << id << '\n';
    co_await other.session_destroy(id);
}

// Works while holding the lock until the lock is lost, while `trouble` runs; returns the reason.
asio::awaitable<colock::error_code> work_until_lost(colock::lock& lock, asio::awaitable<void> trouble)
{
    // `||`: the first to finish wins and the other is cancelled. A loss completes lost()
    // successfully, with the reason as its value, so it stops the work at once.
    auto held = work(lock.fencing_token()) || lock.lost(asio::use_awaitable);
    // `&&`: run that and the trouble side by side, and wait for both.
    auto finished = co_await (std::move(held) && std::move(trouble));
    check(finished.index() == 1, "the loss stopped the work");
    co_return std::get<1>(finished);
}

asio::awaitable<void> demo(client& consul, client& intruder)
{
    const std::string prefix = "colock-examples/" + std::to_string(::getpid()) + "/";
    const std::string key = prefix + "billing-run";

    // A session of its own for this lock, with a short TTL and lock-delay (the defaults, 15 s each,
    // suit production, not an example that loses its lock on purpose).
    colock::lock_options opts = colock::lock_options::with_own_session(5s, 1s);
    colock::lock lock(consul, key, opts);

    // 1. The key is deleted (say, by an operator cleaning up).
    co_await lock.acquire();
    const std::uint64_t first_token = lock.fencing_token();
    std::cout << "acquired, fencing token " << first_token << '\n';
    colock::error_code why = co_await work_until_lost(lock, delete_key_soon(intruder, key));
    check(why == colock::condition::ownership_lost, "lost() reports a loss of ownership");
    check(!lock.is_held(), "a lost lock is no longer held");
    std::cout << "lost: " << why.message() << '\n';

    // There is nothing to release any more, and release() says so instead of failing silently.
    auto [not_held] = co_await lock.release(asio::as_tuple(asio::use_awaitable));
    check(not_held == colock::errc::not_held, "releasing a lost lock reports not_held");

    // Acquire again. The key was re-created, yet the fencing token still rises.
    co_await lock.acquire();
    const std::uint64_t second_token = lock.fencing_token();
    check(second_token > first_token, "the fencing token rises, also across deletion of the key");
    std::cout << "acquired again, fencing token " << second_token << '\n';

    // 2. The session is destroyed (say, by an operator, or Consul invalidating it).
    const session_id held_by = lock.session_id().value();
    why = co_await work_until_lost(lock, destroy_session_soon(intruder, held_by));
    check(why == colock::condition::ownership_lost, "lost() reports a loss of ownership");
    check(!lock.is_held(), "a lost lock is no longer held");
    std::cout << "lost: " << why.message() << '\n';

    // Acquire again, with a new session. Consul holds the key back for the session's lock-delay
    // (1 s here) after its session was invalidated; acquire() waits that out.
    const auto start = std::chrono::steady_clock::now();
    co_await lock.acquire();
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    check(lock.session_id() && *lock.session_id() != held_by, "the lock holds the key with a new session");
    check(lock.fencing_token() > second_token, "the fencing token rises again");
    std::cout << "acquired again after " << waited.count() << " ms (lock-delay), fencing token "
              << lock.fencing_token() << '\n';
    co_await lock.release();

    // Leave nothing behind: our keys (the lock's own session went with release()).
    co_await consul.kv_delete(prefix, kv_delete_options::recursive());
    std::cout << "done\n";
}

int main()
{
    try {
        // Print at once, so that these lines and the library's warnings (on stderr) stay in order.
        std::cout << std::unitbuf;
        asio::io_context ioc;
        const client_options config = client_options::from_env();
        client consul(ioc.get_executor(), config);
        client intruder(ioc.get_executor(), config); // stands for another process, or an operator
        bool finished = false;
        asio::co_spawn(ioc, demo(consul, intruder), [&](std::exception_ptr e) {
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
