// colock::semaphore: at most N holders at once across processes, on the layout of Consul's Go
// api.Semaphore (so Go programs and `consul lock -n` share it). Run it against an agent:
//
//     CONSUL_HTTP_ADDR=127.0.0.1:8500 ./07_semaphore
//
// Five workers share two slots; the example exits with 0 only when never more than two ran at
// once, every acquisition had its own fencing token, and nothing was left in Consul.

#include <colock/colock.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <exception>
#include <iostream>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

namespace asio = boost::asio;
using namespace colock::consul;
using namespace std::chrono_literals;

void check(bool ok, const char* what)
{
    if (!ok)
        throw std::runtime_error(std::string("expected: ") + what);
}

struct tally {
    int running = 0;
    int most = 0;
    int finished = 0;
    std::set<std::uint64_t> tokens;
};

// One worker: take a slot, work a little, give it back; three times.
asio::awaitable<void> worker(colock::semaphore& slots, int id, tally& t)
{
    for (int round = 0; round < 3; ++round) {
        co_await slots.acquire(); // waits while both slots are taken
        t.most = std::max(t.most, ++t.running);
        t.tokens.insert(slots.fencing_token()); // rises with every acquisition on the prefix
        std::cout << "worker " << id << " runs (token " << slots.fencing_token() << ", " << t.running
                  << " running)\n";
        asio::steady_timer work(co_await asio::this_coro::executor, 20ms);
        co_await work.async_wait(asio::use_awaitable);
        --t.running;
        co_await slots.release();
    }
    ++t.finished;
}

asio::awaitable<void> demo(client& consul)
{
    const std::string prefix = "colock-examples/" + std::to_string(::getpid()) + "/render-slots";

    // Each semaphore object contends with a session of its own (deleted with the object, and its
    // contender key with it), so five objects are five contenders.
    std::vector<std::unique_ptr<colock::semaphore>> workers;
    for (int i = 0; i < 5; ++i) {
        colock::semaphore_options opts;
        opts.value = "worker " + std::to_string(i); // stored in this contender's key
        workers.push_back(std::make_unique<colock::semaphore>(consul, prefix, 2, opts));
    }
    tally t;
    for (int i = 0; i < 5; ++i)
        asio::co_spawn(consul.get_executor(), worker(*workers[i], i, t), asio::detached);
    while (t.finished < 5) {
        asio::steady_timer poll(consul.get_executor(), 10ms);
        co_await poll.async_wait(asio::use_awaitable);
    }
    check(t.most <= 2, "never more than two workers at once");
    check(t.tokens.size() == 15, "every acquisition had its own fencing token");
    std::cout << "15 runs, at most " << t.most << " at once\n";

    // A different limit on the same prefix is refused: every contender must agree on it.
    colock::semaphore greedy(consul, prefix, 3);
    auto [ec] = co_await greedy.acquire(asio::as_tuple(asio::use_awaitable));
    check(ec == colock::errc::limit_conflict, "a different limit is refused");
    std::cout << "limit 3 on a limit-2 semaphore: " << ec.message() << '\n';

    workers.clear(); // ends their sessions: their contender keys go with them
    co_await consul.kv_delete(prefix, kv_delete_options::recursive());
    std::cout << "done\n";
}

int main()
{
    try {
        asio::io_context ioc;
        client consul(ioc.get_executor(), client_options::from_env());
        bool finished = false;
        asio::co_spawn(ioc, demo(consul), [&](std::exception_ptr e) {
            if (e)
                std::rethrow_exception(e);
            finished = true;
        });
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
