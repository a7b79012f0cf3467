#ifndef COLOCK_TEST_COMMON_FAULT_HELPERS_HPP
#define COLOCK_TEST_COMMON_FAULT_HELPERS_HPP

// Scaffolding shared by the fault tier: run a client (or one client operation) against the scripted fake agent under
// run_async's deadline and prove it ran to the end, poll for a condition, time spans, and checks over what the fake
// agent recorded. The test bodies keep the data and the expectations.

#include <colock/consul/client.hpp>

#include "async_test.hpp"
#include "fake_agent.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace colock::test {

using clock_type = std::chrono::steady_clock;
inline constexpr auto tuple_awaitable = boost::asio::as_tuple(boost::asio::use_awaitable);

inline long long ms_between(clock_type::time_point a, clock_type::time_point b)
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

inline long long ms_since(clock_type::time_point t0) { return ms_between(t0, clock_type::now()); }

/// Polls `cond` every 5 ms on the test's io_context; false if it did not hold within `limit`.
inline boost::asio::awaitable<bool> eventually(std::function<bool()> cond, std::chrono::milliseconds limit)
{
    const auto give_up = clock_type::now() + limit;
    while (!cond()) {
        if (clock_type::now() >= give_up)
            co_return false;
        co_await sleep_for(std::chrono::milliseconds(5));
    }
    co_return true;
}

/// How many recorded requests have a target starting with `prefix`.
inline std::size_t count_targets(const std::vector<recorded_request>& reqs, const std::string& prefix)
{
    return static_cast<std::size_t>(
        std::count_if(reqs.begin(), reqs.end(), [&](const recorded_request& r) { return r.target.starts_with(prefix); }));
}

/// The fake agent recorded exactly these request targets, in this order (a failure names the request).
inline void expect_targets(const std::vector<recorded_request>& reqs, const std::vector<std::string>& targets)
{
    BOOST_TEST_REQUIRE(reqs.size() == targets.size());
    for (std::size_t i = 0; i < targets.size(); ++i)
        BOOST_TEST_CONTEXT("request " << i) { BOOST_TEST(reqs[i].target == targets[i]); }
}

/// The fake agent recorded exactly as many requests as `connections`, the i-th on connection `connections[i]`.
inline void expect_connections(const std::vector<recorded_request>& reqs, const std::vector<std::size_t>& connections)
{
    BOOST_TEST_REQUIRE(reqs.size() == connections.size());
    for (std::size_t i = 0; i < connections.size(); ++i)
        BOOST_TEST_CONTEXT("request " << i) { BOOST_TEST(reqs[i].connection == connections[i]); }
}

using client_body = std::function<boost::asio::awaitable<void>(consul::client&, boost::asio::io_context&)>;

/// Runs `body` with a client on `options` under run_async's deadline, and checks that the body ran to its end.
inline void with_client(const consul::client_options& options, client_body body,
                        std::chrono::milliseconds timeout = std::chrono::seconds(5), colock::logger log = {})
{
    bool ran = false;
    run_async(
        [&](boost::asio::io_context& ioc) -> boost::asio::awaitable<void> {
            consul::client c(ioc.get_executor(), options, log);
            co_await body(c, ioc);
            ran = true;
        },
        timeout);
    BOOST_TEST(ran);
}

/// What one client operation completed with, and how long the co_await took.
template <class R>
struct op_result {
    error_code ec;
    R value{};
    long long ms = 0;
};

/// Runs one operation, `op(client)` returning an awaitable of (error_code, R) (use tuple_awaitable as the token), on
/// a client with `options` under run_async's deadline; requires that it completed and returns what it completed with.
template <class Op>
auto run_op(const consul::client_options& options, Op op, colock::logger log = {})
{
    using tuple_type = typename std::invoke_result_t<Op&, consul::client&>::value_type;
    using value_type = std::tuple_element_t<1, tuple_type>;
    std::optional<op_result<value_type>> out;
    run_async(
        [&](boost::asio::io_context& ioc) -> boost::asio::awaitable<void> {
            consul::client c(ioc.get_executor(), options, log);
            const auto t0 = clock_type::now();
            auto [ec, value] = co_await op(c);
            out.emplace(op_result<value_type>{ec, std::move(value), ms_since(t0)});
        },
        std::chrono::seconds(5));
    BOOST_TEST_REQUIRE(out.has_value(), "the operation did not complete");
    return std::move(*out);
}

} // namespace colock::test

#endif
