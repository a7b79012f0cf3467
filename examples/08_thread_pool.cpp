// A multi-threaded server's use of colock: one client for the whole process, request handlers as
// coroutines on every thread of an asio::thread_pool, each taking a lock object of its own on the
// key of the account it works on. Run it against an agent:
//
//     CONSUL_HTTP_ADDR=127.0.0.1:8500 ./08_thread_pool
//
// What it shows:
// - operations may start from any thread, concurrently, on one client: the client keeps its state
//   on a strand of its own, and completions run on each caller's executor (here the pool);
// - the lock excludes in the process as well: two handlers on one key never work at once, so the
//   per-account balance below needs no mutex of its own;
// - close() ends the client's work, so the pool's threads have nothing left and join() returns.
//
// It exits with 0 only when every handler ran and every balance adds up.

#include <colock/colock.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <exception>
#include <future>
#include <iostream>
#include <string>
#include <stdexcept>
#include <vector>
#include <unistd.h>

namespace asio = boost::asio;
using namespace colock::consul;
using namespace std::chrono_literals;

constexpr int accounts = 4;
constexpr int handlers = 32;
constexpr int deposits_per_handler = 3;

// What the locks protect: the balances, plain ints written from whichever pool thread holds the
// account's lock. A second writer at once would lose deposits, and the totals at the end would
// not add up.
struct bank {
    std::array<long, accounts> balance{};
    std::atomic<int> inside_at_once{0}; // only to prove the exclusion: must never exceed 1 per account
    std::array<std::atomic<int>, accounts> inside{};
};

// One request handler: deposits into one account, each time under that account's lock.
asio::awaitable<void> handle_requests(client& consul, std::string key, bank& b, int account)
{
    colock::lock lock(consul, key); // one lock object per handler; the client is shared
    asio::steady_timer work(co_await asio::this_coro::executor);
    for (int i = 0; i < deposits_per_handler; ++i) {
        co_await lock.acquire();
        const int now = b.inside[account].fetch_add(1) + 1;
        int most = b.inside_at_once.load();
        while (now > most && !b.inside_at_once.compare_exchange_weak(most, now)) {
        }
        const long before = b.balance[account];
        work.expires_after(1ms); // the guarded work, which would pass lock.fencing_token() to storage
        co_await work.async_wait(asio::use_awaitable);
        b.balance[account] = before + 10; // read-modify-write: safe only under the lock
        b.inside[account].fetch_sub(1);
        co_await lock.release();
    }
}

int main()
{
    try {
        const std::string prefix = "colock-examples/" + std::to_string(::getpid()) + "/accounts/";
        bank b;
        asio::thread_pool pool(4);
        {
            // The client on the pool itself (a strand of the pool works the same way): its own state
            // lives on an internal strand either way.
            client consul(pool.get_executor(), client_options::from_env());

            std::vector<std::future<void>> done;
            for (int h = 0; h < handlers; ++h) {
                const int account = h % accounts;
                done.push_back(asio::co_spawn(pool,
                                              handle_requests(consul, prefix + std::to_string(account), b, account),
                                              asio::use_future));
            }
            for (auto& f : done) {
                if (f.wait_for(60s) != std::future_status::ready)
                    throw std::runtime_error("a handler did not finish within 60 s");
                f.get(); // rethrows a handler's error
            }

            // Leave nothing behind: the accounts' keys, then close(): releases what is still held,
            // destroys the shared session, stops the client's timers and watches.
            auto cleanup = asio::co_spawn(
                pool,
                [&]() -> asio::awaitable<void> {
                    co_await consul.kv_delete(prefix, kv_delete_options::recursive());
                    co_await consul.close();
                },
                asio::use_future);
            if (cleanup.wait_for(30s) != std::future_status::ready)
                throw std::runtime_error("close() did not finish within 30 s");
            cleanup.get();
        } // the client is destroyed here, on the main thread, while the pool still runs

        pool.join(); // returns: nothing of the client keeps the pool's threads busy
        long total = 0;
        for (int a = 0; a < accounts; ++a) {
            std::cout << "account " << a << ": " << b.balance[a] << '\n';
            total += b.balance[a];
        }
        const long expected = 10L * handlers * deposits_per_handler;
        std::cout << handlers << " handlers on 4 threads, most inside one account at once: "
                  << b.inside_at_once.load() << ", total " << total << " of " << expected << '\n';
        if (b.inside_at_once.load() != 1 || total != expected) {
            std::cerr << "error: the locks did not exclude\n";
            return 1;
        }
        std::cout << "done\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << '\n';
        return 1;
    }
}
