#ifndef COLOCK_TEST_COMMON_LOCK_HELPERS_HPP
#define COLOCK_TEST_COMMON_LOCK_HELPERS_HPP

// Scaffolding of the colock::lock tests against the real agent: client settings whose shared session is easy to find
// and quick to hand over, the common expectations on one lock, and polls with deadlines over what Consul shows.

#include <colock/consul/client.hpp>
#include <colock/consul/session.hpp>
#include <colock/lock.hpp>
#include <colock/semaphore.hpp>

#include "async_test.hpp"
#include "consul_agent.hpp"
#include "fault_helpers.hpp"
#include "kv_probe.hpp"
#include "test_options.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace colock::test {

/// A client of the real agent (or of `port`, e.g. a proxy) whose shared session is named `session_name` (so the
/// harness can find it), lives by its TTL alone (no checks) and has no lock-delay (an operator's destroy does not
/// hold the key for Consul's default 15 s).
inline consul::client_options lock_client(const std::string& session_name,
                                          std::chrono::milliseconds ttl = std::chrono::seconds(10),
                                          std::uint16_t port = 0)
{
    auto o = real_agent_options(port);
    o.shared_session.name = session_name;
    o.shared_session.ttl = ttl;
    o.shared_session.lock_delay = std::chrono::milliseconds(0);
    o.shared_session.node_checks = std::vector<std::string>{};
    return o;
}

/// The session id a lock, semaphore or session holds, as Consul writes it in keys ("" when none).
inline std::string sid_of(const lock& l) { return l.session_id() ? l.session_id()->str() : std::string(); }
inline std::string sid_of(const semaphore& s) { return s.session_id() ? s.session_id()->str() : std::string(); }
inline std::string sid_of(const consul::session& s) { return s.id() ? s.id()->str() : std::string(); }

/// Semaphore options whose own session is named `name` (so a test can find it, and check none is left) with
/// TTL `ttl`.
inline semaphore_options named_session(const std::string& name, std::chrono::milliseconds ttl = std::chrono::seconds(10))
{
    semaphore_options o;
    o.own_session.name = name;
    o.own_session.ttl = ttl;
    return o;
}

/// What the expectations below call a lock or a semaphore in their messages.
inline const std::string& holder_name(const lock& l) { return l.key(); }
inline const std::string& holder_name(const semaphore& s) { return s.prefix(); }

/// acquire() succeeds and the object (a lock or a semaphore) says it holds the lock.
template <class Holder>
inline boost::asio::awaitable<void> expect_acquired(Holder& l)
{
    auto [ec] = co_await l.acquire(tuple_awaitable);
    BOOST_TEST_REQUIRE(!ec, "acquire of " << holder_name(l) << ": " << ec.message());
    BOOST_TEST_REQUIRE(l.is_held());
    BOOST_TEST(l.fencing_token() > 0u);
    BOOST_TEST_REQUIRE(l.session_id().has_value());
}

/// release() succeeds and the object no longer holds the lock.
template <class Holder>
inline boost::asio::awaitable<void> expect_released(Holder& l)
{
    auto [ec] = co_await l.release(tuple_awaitable);
    BOOST_TEST_REQUIRE(!ec, "release of " << holder_name(l) << ": " << ec.message());
    BOOST_TEST(!l.is_held());
    BOOST_TEST(l.fencing_token() == 0u);
}

/// try_acquire() completes without error; returns whether it took the lock.
template <class Holder>
inline boost::asio::awaitable<bool> try_acquire_once(Holder& l)
{
    auto [ec, acquired] = co_await l.try_acquire(tuple_awaitable);
    BOOST_TEST_REQUIRE(!ec, "try_acquire of " << holder_name(l) << ": " << ec.message());
    BOOST_TEST(l.is_held() == acquired);
    co_return acquired;
}

/// lost() completes without error (the wait itself did not fail); returns why the hold ended.
template <class Holder>
inline boost::asio::awaitable<error_code> lost_reason(Holder& l)
{
    auto [ec, reason] = co_await l.lost(tuple_awaitable);
    BOOST_TEST(!ec, "lost() of " << holder_name(l) << " failed: " << ec.message());
    co_return reason;
}

/// try_acquire() completes without error and refuses (someone else holds the key).
template <class Holder>
inline boost::asio::awaitable<void> expect_refused(Holder& l)
{
    const bool acquired = co_await try_acquire_once(l);
    BOOST_TEST(!acquired, "try_acquire of " << holder_name(l) << " took a key held by another");
}

/// try_acquire() completes without error and takes the lock.
template <class Holder>
inline boost::asio::awaitable<void> expect_taken(Holder& l)
{
    const bool acquired = co_await try_acquire_once(l);
    BOOST_TEST_REQUIRE(acquired, "try_acquire of " << holder_name(l) << " did not take a free key");
}

/// Polls `cond` (on the test's io_context) and fails the test if it did not hold within `limit`.
inline boost::asio::awaitable<void> require_eventually(std::function<bool()> cond, std::chrono::milliseconds limit,
                                                       const char* what)
{
    const bool ok = co_await eventually(std::move(cond), limit);
    BOOST_TEST_REQUIRE(ok, what << " did not hold within " << limit.count() << " ms");
}

/// What a callback-style operation completed with, and when. Shared with the handler, so a handler that runs after
/// the test body has given up writes into live memory.
struct completion {
    bool done = false;
    error_code ec;
    std::chrono::steady_clock::time_point at = std::chrono::steady_clock::time_point::max();
};

/// A handler of signature void(error_code) that records into `c`.
inline auto record_into(std::shared_ptr<completion> c)
{
    return [c](error_code ec) {
        c->ec = ec;
        c->at = std::chrono::steady_clock::now();
        c->done = true;
    };
}

/// Polls Consul until no session named `name_prefix...` is left (after the clients that made them are gone).
inline boost::asio::awaitable<void> expect_no_sessions_named(const std::string& name_prefix,
                                                             std::chrono::milliseconds limit = std::chrono::seconds(5))
{
    std::vector<std::string> left;
    auto none_left = [&] {
        left = consul_agent::instance().sessions_named(name_prefix);
        return left.empty();
    };
    const bool clean = co_await eventually(none_left, limit);
    BOOST_TEST(clean, left.size() << " session(s) named " << name_prefix << "... left, e.g. "
                                  << (left.empty() ? std::string() : left.front()));
}

/// Polls Consul until `key` is not locked by any session; returns whether that happened within `limit`.
inline boost::asio::awaitable<bool> eventually_unlocked(const std::string& key, std::chrono::milliseconds limit)
{
    auto unlocked = [&] { return read_key(key).session.empty(); };
    co_return co_await eventually(unlocked, limit);
}

} // namespace colock::test

#endif
