// The basics of colock::lock: acquire a lock, read its fencing token, see what Consul stores in
// the key, release it. Run it against an agent:
//
//     CONSUL_HTTP_ADDR=127.0.0.1:8500 ./01_acquire_release
//
// It exits with 0 only when each step did what the comments say.

#include <colock/colock.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <exception>
#include <iostream>
#include <stdexcept>
#include <string>
#include <unistd.h>

namespace asio = boost::asio;
using namespace colock::consul;
using namespace std::chrono_literals;

// Stops the example with an error when what it demonstrates did not happen.
void check(bool ok, const char* what)
{
    if (!ok)
        throw std::runtime_error(std::string("expected: ") + what);
}

asio::awaitable<void> demo(client& consul)
{
    // A key prefix of our own, so that runs never meet.
    const std::string prefix = "colock-examples/" + std::to_string(::getpid()) + "/";
    const std::string key = prefix + "nightly-report";

    // A lock is a key in Consul. By default it is held with the client's shared session, which
    // the client creates on first use and renews in the background.
    colock::lock_options opts;
    opts.value = "held by example 01"; // what others read in the key while we hold it
    colock::lock lock(consul, key, opts);

    co_await lock.acquire(); // waits until the lock is ours (it is free here, so at once)
    check(lock.is_held(), "the lock is held after acquire()");

    // The fencing token rises with every new holder: pass it to whatever the lock protects, and
    // let that refuse smaller tokens (a lease lock alone cannot stop a paused holder).
    const std::uint64_t first_token = lock.fencing_token();
    std::cout << "acquired " << key << ", fencing token " << first_token << '\n';

    // What anyone can see in Consul: our session holds the key, with the lock flags of Consul's
    // own `consul lock`, so Go clients and the CLI recognise it.
    kv_get_result seen = co_await consul.kv_get(key);
    check(seen.entry && seen.entry->session && seen.entry->session == lock.session_id(),
          "Consul shows our session on the key");
    check(seen.entry->flags == colock::lock_flags, "the key carries the lock flags");
    std::cout << "Consul: session " << *seen.entry->session << ", value \"" << seen.entry->value << "\"\n";

    // Two lock objects on one key exclude each other, in one process too. Contention is not an
    // error: try_acquire() answers false.
    colock::lock other(consul, key);
    bool got = co_await other.try_acquire();
    check(!got, "a second lock object cannot take a held lock");
    std::cout << "second lock object: try_acquire() -> false while the first holds\n";

    // Release: the key stays, unlocked.
    co_await lock.release();
    check(!lock.is_held(), "the lock is not held after release()");
    seen = co_await consul.kv_get(key);
    check(seen.entry && !seen.entry->session, "Consul shows no holder after release()");
    std::cout << "released\n";

    // Now the other object gets it, with a larger fencing token.
    got = co_await other.try_acquire();
    check(got, "the second lock object takes the free lock");
    check(other.fencing_token() > first_token, "the next holder's fencing token is larger");
    std::cout << "second lock object: acquired, fencing token " << other.fencing_token() << '\n';
    co_await other.release();

    // Leave nothing behind: our keys, then the shared session.
    co_await consul.kv_delete(prefix, kv_delete_options::recursive());
    co_await consul.shared_session().close();
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
