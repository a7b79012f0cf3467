// The Consul layer of colock on its own: configuration from the environment, typed KV calls,
// a managed session, a lock taken with one transaction (whose ModifyIndex is a fencing token),
// and a watch that wakes on a change. Run it against an agent:
//
//     CONSUL_HTTP_ADDR=127.0.0.1:8500 ./consul_client
//
// Errors: with the default token (asio::deferred) a failure throws boost::system::system_error
// under co_await; `asio::as_tuple(asio::use_awaitable)` returns it as a value instead.

#include <colock/colock.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdio>
#include <exception>
#include <string>
#include <unistd.h>

namespace asio = boost::asio;
using namespace colock::consul;
using namespace std::chrono_literals;

asio::awaitable<void> demo(client& consul)
{
    const std::string prefix = "colock-example/" + std::to_string(::getpid()) + "/";

    // Plain KV: flags are full uint64 values.
    co_await consul.kv_put(prefix + "config", "v1", kv_put_options(42));
    kv_get_result got = co_await consul.kv_get(prefix + "config");
    std::printf("read %s = %s (flags %llu, index %llu)\n", got.entry->key.c_str(), got.entry->value.c_str(),
                static_cast<unsigned long long>(got.entry->flags), static_cast<unsigned long long>(got.meta.index));

    // A managed session: created on demand, renewed in the background, destroyed by close().
    session_options opts;
    opts.name = "colock example";
    opts.ttl = 10s;
    opts.lock_delay = 1s;
    session s(consul, opts);
    session_id id = co_await s.start();
    std::printf("session %s, fail-safe deadline in %lld ms\n", id.str().c_str(),
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           s.deadline() - std::chrono::steady_clock::now()).count()));

    // Lock a key with one transaction: the result carries the ModifyIndex of that very write.
    std::vector<txn_op> lock_ops{txn_op::lock(prefix + "lock", id, "held by the example")};
    txn_result locked = co_await consul.txn(std::move(lock_ops));
    if (!locked.committed)
        throw std::runtime_error("the lock is held by someone else");
    std::printf("locked %s, fencing token %llu\n", (prefix + "lock").c_str(),
                static_cast<unsigned long long>(locked.results.at(0).modify_index));

    // A watch: the first next() returns the current state, the second waits for a change.
    kv_watch_options wopts;
    wopts.wait = 5s;
    kv_watch watch(consul, prefix + "config", wopts);
    (void)co_await watch.next();
    asio::steady_timer later(co_await asio::this_coro::executor, 100ms);
    later.async_wait([&](boost::system::error_code) {
        asio::co_spawn(consul.get_executor(), [&]() -> asio::awaitable<void> {
            co_await consul.kv_put(prefix + "config", "v2");
        }, asio::detached);
    });
    kv_get_result changed = co_await watch.next();
    std::printf("watch saw %s = %s\n", changed.entry->key.c_str(), changed.entry->value.c_str());

    // Errors as values: a renewal of an unknown session is errc::session_invalidated.
    auto [ec, entry] = co_await consul.session_renew(session_id("00000000-0000-0000-0000-000000000000"), {},
                                                     asio::as_tuple(asio::use_awaitable));
    std::printf("renewing an unknown session: %s\n", ec.message().c_str());

    // Release, clean up, close: nothing is left behind.
    std::vector<txn_op> unlock_ops{txn_op::unlock(prefix + "lock", id, "")};
    co_await consul.txn(std::move(unlock_ops));
    co_await consul.kv_delete(prefix, kv_delete_options::recursive());
    co_await s.close();
    std::printf("done\n");
}

int main()
{
    try {
        asio::io_context ioc;
        client consul(ioc.get_executor(), client_options::from_env());
        bool ok = false;
        asio::co_spawn(ioc, demo(consul), [&](std::exception_ptr e) {
            if (e) {
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    std::fprintf(stderr, "error: %s\n", ex.what());
                }
            } else {
                ok = true;
            }
        });
        ioc.run_for(60s);
        return ok ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
