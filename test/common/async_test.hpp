#ifndef COLOCK_TEST_COMMON_ASYNC_TEST_HPP
#define COLOCK_TEST_COMMON_ASYNC_TEST_HPP

// Runs a coroutine test body on a fresh io_context under a hard deadline, and proves it ran to the
// end: a hang fails the test at the deadline (not a CI timeout), an exception fails it with its text.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include "printers.hpp"

#include <chrono>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>

namespace colock::test {

using namespace std::chrono_literals;

/// Runs `body(ioc)` as a coroutine; fails the test if it has not finished within `timeout` or threw.
inline void run_async(std::function<boost::asio::awaitable<void>(boost::asio::io_context&)> body,
                      std::chrono::milliseconds timeout = 30s)
{
    boost::asio::io_context ioc;
    bool finished = false;
    std::exception_ptr error;
    boost::asio::co_spawn(ioc, body(ioc), [&](std::exception_ptr e) {
        finished = true;
        error = e;
    });
    ioc.run_for(timeout);
    BOOST_TEST_REQUIRE(finished, "the test body did not finish within " << timeout.count() << " ms");
    if (error) {
        try {
            std::rethrow_exception(error);
        } catch (const std::exception& e) {
            BOOST_FAIL(std::string("the test body threw: ") + e.what());
        }
    }
    // Let background work (e.g. session destroys) finish, bounded.
    ioc.restart();
    ioc.run_for(1s);
}

/// Sleeps inside a test coroutine (for waiting on *time-based* behaviour such as a TTL, never to wait
/// for a server to become ready).
inline boost::asio::awaitable<void> sleep_for(std::chrono::milliseconds d)
{
    boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, d);
    co_await t.async_wait(boost::asio::use_awaitable);
}

} // namespace colock::test

#endif
