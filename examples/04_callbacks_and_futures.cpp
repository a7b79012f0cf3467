// colock without coroutines: the same lock operations (acquire, try_acquire by a second lock
// object, release, and a release too many) first with completion callbacks, then with
// asio::use_future from a thread that does not run the io_context. Run it against an agent:
//
//     CONSUL_HTTP_ADDR=127.0.0.1:8500 ./04_callbacks_and_futures
//
// It exits with 0 only when both ways gave the expected results.

#include <colock/colock.hpp>

#include <boost/asio/deferred.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/system/system_error.hpp>

#include <cstdint>
#include <exception>
#include <future>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>

namespace asio = boost::asio;
using colock::error_code;
using namespace colock::consul;
using namespace std::chrono_literals;

// Stops the example with an error when what it demonstrates did not happen.
void check(bool ok, const char* what)
{
    if (!ok)
        throw std::runtime_error(std::string("expected: ") + what);
}

// A failed operation, as an exception (what co_await and futures do by default).
void throw_if(error_code ec)
{
    if (ec)
        throw boost::system::system_error(ec);
}

// Callbacks: each completion handler checks the result and starts the next step. The handlers run
// inside io_context::run(); an exception thrown there comes out of run().
void with_callbacks(asio::io_context& ioc, colock::lock& first, colock::lock& second)
{
    first.acquire([&](error_code ec) {
        throw_if(ec);
        std::cout << "callbacks: acquired, fencing token " << first.fencing_token() << '\n';
        second.try_acquire([&](error_code ec, bool got) {
            throw_if(ec);
            check(!got, "a second lock object cannot take a held lock");
            std::cout << "callbacks: second lock object: try_acquire() -> false\n";
            first.release([&](error_code ec) {
                throw_if(ec);
                std::cout << "callbacks: released\n";
                first.release([&](error_code ec) {
                    // Errors arrive as error codes: releasing what is not held is errc::not_held.
                    check(ec == colock::errc::not_held, "a second release reports not_held");
                    std::cout << "callbacks: release again -> " << ec.message() << '\n';
                    ioc.stop(); // done: let run_for() return
                });
            });
        });
    });
}

// The client and its locks are used from one thread at a time: here the thread that runs the
// io_context. So each operation is started on that thread (post, then the operation as a deferred
// continuation) and its result comes back to the calling thread through a std::future.
template <class MakeOperation>
auto start_on(asio::io_context& ioc, MakeOperation make_operation)
{
    return asio::post(ioc, asio::deferred(std::move(make_operation)))(asio::use_future);
}

// Reads state on the io_context's thread, for the same reason.
template <class Read>
auto read_on(asio::io_context& ioc, Read read)
{
    return asio::post(ioc, asio::use_future(std::move(read)));
}

// Waits for a future, but not forever.
template <class T>
T get(std::future<T> f)
{
    if (f.wait_for(30s) != std::future_status::ready)
        throw std::runtime_error("no result within 30 s");
    return f.get();
}

void with_futures(asio::io_context& ioc, colock::lock& first, colock::lock& second)
{
    get(start_on(ioc, [&] { return first.acquire(); })); // throws if acquire() fails
    std::uint64_t token = get(read_on(ioc, [&] { return first.fencing_token(); }));
    std::cout << "futures: acquired, fencing token " << token << '\n';

    bool got = get(start_on(ioc, [&] { return second.try_acquire(); }));
    check(!got, "a second lock object cannot take a held lock");
    std::cout << "futures: second lock object: try_acquire() -> false\n";

    get(start_on(ioc, [&] { return first.release(); }));
    std::cout << "futures: released\n";

    // Errors arrive as exceptions from get().
    try {
        get(start_on(ioc, [&] { return first.release(); }));
        check(false, "a second release fails");
    } catch (const boost::system::system_error& e) {
        check(e.code() == colock::errc::not_held, "a second release reports not_held");
        std::cout << "futures: release again -> " << e.code().message() << '\n';
    }
}

int main()
{
    try {
        asio::io_context ioc;
        client consul(ioc.get_executor(), client_options::from_env());
        const std::string prefix = "colock-examples/" + std::to_string(::getpid()) + "/";
        colock::lock first(consul, prefix + "cache-rebuild");
        colock::lock second(consul, prefix + "cache-rebuild");

        // 1. Callbacks, with the io_context run by this thread. A deadline, so that it never hangs.
        with_callbacks(ioc, first, second);
        ioc.run_for(30s);
        check(ioc.stopped(), "the callbacks finished within 30 s");
        ioc.restart();

        // 2. Futures: another thread runs the io_context (the work guard keeps run() going while
        //    it has nothing to do), this one starts operations and waits for their results.
        auto work = asio::make_work_guard(ioc);
        std::thread io_thread([&] { ioc.run_for(60s); });
        try {
            with_futures(ioc, first, second);
            // Leave nothing behind: our keys, then the shared session.
            get(start_on(ioc, [&] { return consul.kv_delete(prefix, kv_delete_options::recursive()); }));
            get(start_on(ioc, [&] { return consul.shared_session().close(); }));
        } catch (...) {
            ioc.stop();
            io_thread.join();
            throw;
        }
        work.reset(); // run() returns once the remaining work is done
        io_thread.join();
        check(ioc.stopped(), "all work finished within 60 s");
        std::cout << "done\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << '\n';
        return 1;
    }
}
