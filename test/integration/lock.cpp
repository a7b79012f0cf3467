// colock::lock against the real agent (Tier B, TESTING.md B1-B7, B11; CONSUL.md sections 2, 5 and 6): what the key
// shows while held and after, exclusion and rising fencing tokens across clients and within one, cancellation that
// leaves nothing behind, loss on an operator's destroy, delete or release, lock-delay, flag conflicts, interplay with
// Go-style raw locks, and 1,000 locks on one client within Consul's connection limit.

#include <colock/consul/client.hpp>
#include <colock/consul/session.hpp>
#include <colock/lock.hpp>

#include "async_test.hpp"
#include "consul_agent.hpp"
#include "fault_helpers.hpp"
#include "kv_probe.hpp"
#include "lock_helpers.hpp"
#include "test_options.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/parse.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace colock;
using namespace colock::consul;
using namespace colock::test;
using namespace std::chrono_literals;

BOOST_TEST_GLOBAL_FIXTURE(consul_agent_fixture);

namespace {

consul_agent& agent() { return consul_agent::instance(); }

// Keeps checking for `window` that `key` is not locked by anyone (a cancelled or destroyed waiter must not take it
// later); returns the first session seen holding it, or "".
asio::awaitable<std::string> stays_unlocked(const std::string& key, std::chrono::milliseconds window)
{
    const auto until = clock_type::now() + window;
    while (clock_type::now() < until) {
        auto k = read_key(key);
        if (!k.session.empty())
            co_return k.session;
        co_await sleep_for(20ms);
    }
    co_return std::string();
}

} // namespace

BOOST_AUTO_TEST_SUITE(test_lock)

BOOST_AUTO_TEST_CASE(acquire_writes_the_key_with_go_flags_and_our_session_and_release_clears_it)
{
    const auto prefix = agent().unique_prefix("acquire_release");
    const auto key = prefix + "lock";
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        {
            client c(ioc.get_executor(), lock_client(prefix));
            lock_options opts;
            opts.value = "held by test 1";
            lock l(c, key, opts);
            BOOST_TEST(!l.is_held());
            BOOST_TEST(l.fencing_token() == 0u);
            BOOST_TEST(l.hold_count() == 0u);
            BOOST_TEST(!l.session_id().has_value());
            BOOST_TEST((l.deadline() == lock::clock::time_point::min()));
            BOOST_TEST(l.key() == key);

            // Release before any acquire: nothing to undo.
            auto [not_held] = co_await l.release(tuple_awaitable);
            BOOST_TEST(not_held == errc::not_held, not_held.message());

            co_await expect_acquired(l);
            const auto token = l.fencing_token();
            BOOST_TEST(l.hold_count() == 1u);
            BOOST_TEST((l.deadline() > clock_type::now()));
            BOOST_TEST_REQUIRE(c.shared_session().id().has_value());
            BOOST_TEST(*l.session_id() == *c.shared_session().id()); // no session of its own by default

            // What Consul shows: our session, Go's lock flags, our value, and the acquiring write's index as token.
            auto k = read_key(key);
            BOOST_TEST_REQUIRE(k.exists);
            BOOST_TEST(k.session == sid_of(l));
            BOOST_TEST(k.flags == colock::lock_flags);
            BOOST_TEST(k.flags == 3304740253564472344ull);
            BOOST_TEST(k.modify_index == token);
            BOOST_TEST(k.lock_index >= 1u);
            BOOST_TEST(raw_value(key).value_or("<absent>") == "held by test 1");

            // A second acquire on a held, non-reentrant lock is refused and changes nothing.
            auto [again] = co_await l.acquire(tuple_awaitable);
            BOOST_TEST(again == errc::already_held, again.message());
            BOOST_TEST(l.is_held());
            BOOST_TEST(l.fencing_token() == token);
            BOOST_TEST(read_key(key).session == sid_of(l));

            co_await expect_released(l);
            BOOST_TEST(l.hold_count() == 0u);
            BOOST_TEST(!l.session_id().has_value());
            auto after = read_key(key);
            BOOST_TEST_REQUIRE(after.exists); // a release unlocks, it does not delete
            BOOST_TEST(after.session.empty(), "still locked by " << after.session);
            BOOST_TEST(after.flags == colock::lock_flags);

            auto [twice] = co_await l.release(tuple_awaitable);
            BOOST_TEST(twice == errc::not_held, twice.message());
            // lost() when not held completes at once: the last hold ended with our release.
            const auto why = co_await lost_reason(l);
            BOOST_TEST(why == errc::not_held, why.message());
        }
        co_await expect_no_sessions_named(prefix);
        ran = true;
    });
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(lock_index_is_consuls_and_set_value_is_what_the_release_writes)
{
    const auto prefix = agent().unique_prefix("value_and_term");
    const auto key = prefix + "lock";
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        {
            client c(ioc.get_executor(), lock_client(prefix));
            lock_options opts;
            opts.value = "first";
            lock l(c, key, opts);
            BOOST_TEST(l.lock_index() == 0u);
            co_await expect_acquired(l);
            const auto first_term = l.lock_index();
            BOOST_TEST(first_term == read_key(key).lock_index);
            BOOST_TEST(raw_value(key).value_or("") == "first");
            l.set_value("second"); // writes nothing now ...
            BOOST_TEST(raw_value(key).value_or("") == "first");
            BOOST_TEST(l.options().value == "second");
            co_await expect_released(l); // ... the release writes it
            BOOST_TEST(raw_value(key).value_or("") == "second");
            BOOST_TEST(l.lock_index() == 0u);
            co_await expect_acquired(l); // a new term, even on the same session
            BOOST_TEST(l.lock_index() > first_term);
            BOOST_TEST(l.lock_index() == read_key(key).lock_index);
            co_await expect_released(l);
        }
        co_await expect_no_sessions_named(prefix);
        ran = true;
    });
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(try_acquire_is_false_while_another_client_holds_and_true_after_it_releases)
{
    const auto prefix = agent().unique_prefix("try_acquire");
    const auto key = prefix + "lock";
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        {
            client c1(ioc.get_executor(), lock_client(prefix + "one"));
            client c2(ioc.get_executor(), lock_client(prefix + "two"));
            lock l1(c1, key);
            lock l2(c2, key);
            co_await expect_acquired(l1);
            const auto first_token = l1.fencing_token();

            co_await expect_refused(l2);
            BOOST_TEST(!l2.is_held());
            BOOST_TEST(l2.fencing_token() == 0u);
            BOOST_TEST(read_key(key).session == sid_of(l1));

            co_await expect_released(l1);
            const auto t0 = clock_type::now();
            co_await expect_taken(l2);
            BOOST_TEST_MESSAGE("try_acquire of a free key took " << ms_since(t0) << " ms");
            BOOST_TEST(l2.fencing_token() > first_token);
            BOOST_TEST(read_key(key).session == sid_of(l2));
            BOOST_TEST(sid_of(l2) != c1.shared_session().id().value_or(session_id("none")).str());
            co_await expect_released(l2);
        }
        co_await expect_no_sessions_named(prefix);
        ran = true;
    });
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(three_clients_take_turns_100_times_with_rising_tokens_and_never_overlap)
{
    const auto prefix = agent().unique_prefix("contenders");
    const auto key = prefix + "lock";
    constexpr int contenders = 3;
    constexpr int wanted = 100;
    int acquisitions = 0;
    int inside = 0;     // holders inside the critical section right now: never more than 1
    int max_inside = 0;
    int handoffs = 0;
    int last_holder = -1;
    int token_regressions = 0;
    std::vector<std::uint64_t> tokens; // in acquisition order
    std::array<int, contenders> per_contender{};
    std::vector<std::string> errors;
    bool ran = false;
    const auto started = clock_type::now();
    run_async(
        [&](asio::io_context& ioc) -> asio::awaitable<void> {
            using namespace asio::experimental::awaitable_operators;
            {
                std::vector<std::unique_ptr<client>> clients;
                std::vector<std::unique_ptr<lock>> locks;
                for (int i = 0; i < contenders; ++i) {
                    clients.push_back(std::make_unique<client>(ioc.get_executor(), lock_client(prefix)));
                    locks.push_back(std::make_unique<lock>(*clients.back(), key));
                }
                auto contender = [&](int me) -> asio::awaitable<void> {
                    lock& l = *locks[me];
                    while (acquisitions < wanted) {
                        auto [ec] = co_await l.acquire(tuple_awaitable);
                        if (ec) {
                            errors.push_back("acquire: " + ec.message());
                            co_return;
                        }
                        max_inside = std::max(max_inside, ++inside);
                        ++acquisitions;
                        ++per_contender[me];
                        if (last_holder != -1 && last_holder != me)
                            ++handoffs;
                        last_holder = me;
                        const auto token = l.fencing_token();
                        if (!tokens.empty() && token <= tokens.back())
                            ++token_regressions;
                        tokens.push_back(token);
                        co_await sleep_for(2ms); // the critical section: others must stay out meanwhile
                        if (!l.is_held())
                            errors.push_back("lost while in the critical section");
                        --inside; // out before the release is sent: the key is ours until Consul has it back
                        auto [rec] = co_await l.release(tuple_awaitable);
                        if (rec) {
                            errors.push_back("release: " + rec.message());
                            co_return;
                        }
                        co_await sleep_for(10ms); // think time, so a waiting contender gets its turn
                    }
                };
                co_await (contender(0) && contender(1) && contender(2));
            }
            co_await expect_no_sessions_named(prefix);
            ran = true;
        },
        120s);
    BOOST_TEST(ran);
    BOOST_TEST_MESSAGE(acquisitions << " acquisitions in " << ms_since(started) << " ms, " << handoffs
                                    << " handoffs, per contender " << per_contender[0] << "/" << per_contender[1] << "/"
                                    << per_contender[2]);
    BOOST_TEST(errors.empty(), errors.size() << " errors, first: " << (errors.empty() ? "" : errors.front()));
    BOOST_TEST(acquisitions >= wanted);
    BOOST_TEST(max_inside == 1);
    BOOST_TEST(token_regressions == 0);
    BOOST_TEST(tokens.size() == static_cast<std::size_t>(acquisitions));
    BOOST_TEST((std::adjacent_find(tokens.begin(), tokens.end(), std::greater_equal<>()) == tokens.end()));
    for (int i = 0; i < contenders; ++i)
        BOOST_TEST(per_contender[i] >= 1, "contender " << i << " never got the lock");
    BOOST_TEST(handoffs >= 10); // the lock really moves between clients
}

BOOST_AUTO_TEST_CASE(cancelled_or_timed_out_wait_ends_at_once_and_never_takes_the_key_later)
{
    const auto prefix = agent().unique_prefix("cancel_wait");
    const auto key = prefix + "lock";
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        using namespace asio::experimental::awaitable_operators;
        {
            client c1(ioc.get_executor(), lock_client(prefix + "holder"));
            client c2(ioc.get_executor(), lock_client(prefix + "waiter"));
            lock holder(c1, key);
            lock waiter(c2, key);
            co_await expect_acquired(holder);

            // Each kind of per-operation cancellation, through a signal a timer emits while acquire() waits.
            const std::array<asio::cancellation_type, 3> kinds{asio::cancellation_type::terminal,
                                                                asio::cancellation_type::partial,
                                                                asio::cancellation_type::total};
            for (const auto kind : kinds) {
                BOOST_TEST_CONTEXT("cancellation type " << static_cast<unsigned>(kind))
                {
                    asio::cancellation_signal signal;
                    asio::steady_timer timer(ioc, 300ms);
                    auto cancelled_at = clock_type::time_point::max();
                    auto emit = [&](boost::system::error_code ec) {
                        if (ec)
                            return; // the timer went away first: nothing to cancel
                        cancelled_at = clock_type::now();
                        signal.emit(kind);
                    };
                    timer.async_wait(emit);
                    auto [ec] = co_await waiter.acquire(asio::bind_cancellation_slot(signal.slot(), tuple_awaitable));
                    const auto took = ms_since(cancelled_at);
                    BOOST_TEST(ec == asio::error::operation_aborted, ec.message());
                    BOOST_TEST_MESSAGE("acquire completed " << took << " ms after the cancellation");
                    BOOST_TEST(took < 1000);
                    BOOST_TEST(!waiter.is_held());
                    BOOST_TEST(waiter.fencing_token() == 0u);
                }
            }

            // A timeout with `||`: the timer wins, the acquire is cancelled and awaited.
            const auto t0 = clock_type::now();
            auto timeout = sleep_for(300ms);
            auto raced = co_await (waiter.acquire(tuple_awaitable) || std::move(timeout));
            const auto took = ms_since(t0);
            BOOST_TEST(raced.index() == 1u);
            BOOST_TEST(took < 1300, "a 300 ms timeout took " << took << " ms");
            BOOST_TEST(!waiter.is_held());
            BOOST_TEST(read_key(key).session == sid_of(holder));

            // Once the holder lets go, nothing left of the cancelled waits takes the key.
            co_await expect_released(holder);
            const auto taker = co_await stays_unlocked(key, 700ms);
            BOOST_TEST(taker.empty(), "the key was taken by " << taker << " after every acquire had been cancelled");

            // The waiter's object still works.
            co_await expect_acquired(waiter);
            co_await expect_released(waiter);
        }
        co_await expect_no_sessions_named(prefix);
        ran = true;
    });
    BOOST_TEST(ran);
}

namespace {

// An operator ends our hold behind our back (`act(key, our session id)` through the harness): lost() says so within
// 1 s, the object is "not held", and it can acquire again with a larger token.
void operator_action_ends_the_hold(const std::string& name,
                                   const std::function<void(const std::string&, const std::string&)>& act,
                                   bool new_session_expected)
{
    const auto prefix = agent().unique_prefix(name);
    const auto key = prefix + "lock";
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        {
            client c(ioc.get_executor(), lock_client(prefix));
            lock l(c, key);
            co_await expect_acquired(l);
            const auto old_token = l.fencing_token();
            const auto old_sid = sid_of(l);

            const auto t0 = clock_type::now();
            act(key, old_sid);
            const auto ec = co_await lost_reason(l);
            const auto took = ms_since(t0);
            BOOST_TEST_MESSAGE(name << ": lost() completed with '" << ec.message() << "' " << took
                                    << " ms after the act");
            BOOST_TEST((ec == errc::lock_lost || ec == errc::session_invalidated), ec.message());
            BOOST_TEST(ec == condition::ownership_lost);
            BOOST_TEST(took < 1000);
            BOOST_TEST(!l.is_held());
            BOOST_TEST(l.fencing_token() == 0u);
            BOOST_TEST(l.hold_count() == 0u);
            // Asked again after the fact, lost() still gives the reason.
            const auto again = co_await lost_reason(l);
            BOOST_TEST(again == ec, again.message());
            auto [rel] = co_await l.release(tuple_awaitable);
            BOOST_TEST(rel == errc::not_held, rel.message());
            if (new_session_expected) {
                // The shared session (renewed every 5 s) learns at once that it is gone: the lock saw its key
                // freed without a release of ours and asked.
                co_await require_eventually(
                    [&] { return !c.shared_session().is_live() || sid_of(c.shared_session()) != old_sid; }, 1000ms,
                    "the shared session's news of its end");
            } else {
                BOOST_TEST(c.shared_session().is_live());
            }

            const auto reacquire_started = clock_type::now();
            auto [aec] = co_await l.acquire(tuple_awaitable);
            BOOST_TEST_REQUIRE(!aec, "acquire after the loss failed after " << ms_since(reacquire_started)
                                                                          << " ms: " << aec.message());
            BOOST_TEST_MESSAGE(name << ": acquired again after " << ms_since(reacquire_started) << " ms");
            BOOST_TEST_REQUIRE(l.is_held());
            BOOST_TEST(l.fencing_token() > old_token);
            BOOST_TEST(read_key(key).session == sid_of(l));
            if (new_session_expected)
                BOOST_TEST(sid_of(l) != old_sid);
            else
                BOOST_TEST(sid_of(l) == old_sid); // the session survived: the lock keeps using it
            co_await expect_released(l);
        }
        co_await expect_no_sessions_named(prefix);
        ran = true;
    });
    BOOST_TEST(ran);
}

} // namespace

BOOST_AUTO_TEST_CASE(operator_destroying_the_session_is_reported_within_a_second)
{
    operator_action_ends_the_hold(
        "operator_destroy", [](const std::string&, const std::string& sid) { destroy_session(sid); }, true);
}

BOOST_AUTO_TEST_CASE(operator_deleting_the_key_is_reported_within_a_second)
{
    operator_action_ends_the_hold(
        "operator_delete", [](const std::string& key, const std::string&) { delete_key(key); }, false);
}

BOOST_AUTO_TEST_CASE(operator_releasing_with_our_session_is_reported_within_a_second)
{
    operator_action_ends_the_hold(
        "operator_release",
        [](const std::string& key, const std::string& sid) {
            BOOST_TEST_REQUIRE(raw_lock_write(key, "release", sid, colock::lock_flags));
        },
        false);
}

BOOST_AUTO_TEST_CASE(lock_delay_of_a_destroyed_holder_is_respected_and_the_waiter_follows_at_once)
{
    const auto prefix = agent().unique_prefix("lock_delay");
    const auto key = prefix + "lock";
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        {
            client c1(ioc.get_executor(), lock_client(prefix + "holder-client"));
            client c2(ioc.get_executor(), lock_client(prefix + "waiter-client"));
            auto holder_opts = lock_options::with_own_session(2s, 1s);
            holder_opts.own_session->name = prefix + "own";
            lock holder(c1, key, holder_opts);
            lock waiter(c2, key);
            co_await expect_acquired(holder);
            const auto holder_sid = sid_of(holder);
            BOOST_TEST(!c1.shared_session().id().has_value()); // the lock made a session of its own
            BOOST_TEST(agent().sessions_named(prefix + "own") == std::vector<std::string>{holder_sid});

            auto waited = std::make_shared<completion>();
            auto on_acquired = record_into(waited);
            waiter.acquire(on_acquired);
            // Let the waiter settle on the key (the bounds below hold however far it got).
            co_await sleep_for(300ms);
            BOOST_TEST(!waited->done);

            // Destroy applies the holder session's lock-delay (1 s) to the key.
            const auto before = clock_type::now();
            destroy_session(holder_sid);
            const auto after = clock_type::now();

            const auto lec = co_await lost_reason(holder);
            BOOST_TEST((lec == errc::session_invalidated || lec == errc::lock_lost), lec.message());
            BOOST_TEST(!holder.is_held());

            auto waiter_finished = [&] { return waited->done; };
            co_await require_eventually(waiter_finished, 5s, "the waiter's acquire");
            BOOST_TEST_REQUIRE(!waited->ec, waited->ec.message());
            const auto from_before = ms_between(before, waited->at);
            const auto from_after = ms_between(after, waited->at);
            BOOST_TEST_MESSAGE("lock-delay handoff: acquired " << from_before << " ms after the destroy was sent, "
                                                               << from_after
                                                               << " ms after it was answered (lock-delay 1000 ms)");
            // Consul starts the delay while answering the destroy, so the waiter cannot be in before `before` + 1 s...
            BOOST_TEST(from_before >= 995);
            // ...and it follows soon after the delay ends (jittered retries of at most 250 ms, no fixed 5 s sleep).
            BOOST_TEST(from_after < 1500);
            BOOST_TEST(read_key(key).session == sid_of(waiter));
            co_await expect_released(waiter);
            // The holder's own session is gone (destroyed by the operator; the lock does not re-create it).
            BOOST_TEST(agent().sessions_named(prefix + "own").empty());
        }
        co_await expect_no_sessions_named(prefix);
        ran = true;
    });
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(reentrant_lock_counts_holds_and_unlocks_the_key_with_the_last_release)
{
    const auto prefix = agent().unique_prefix("reentrant");
    const auto key = prefix + "lock";
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        {
            client c(ioc.get_executor(), lock_client(prefix));
            lock_options opts;
            opts.reentrant = true;
            lock l(c, key, opts);
            co_await expect_acquired(l);
            const auto token = l.fencing_token();
            co_await expect_acquired(l);
            BOOST_TEST(l.hold_count() == 2u);
            BOOST_TEST(l.fencing_token() >= token);
            BOOST_TEST(read_key(key).session == sid_of(l));

            auto [first] = co_await l.release(tuple_awaitable);
            BOOST_TEST(!first, first.message());
            BOOST_TEST(l.is_held());
            BOOST_TEST(l.hold_count() == 1u);
            BOOST_TEST(l.fencing_token() > 0u);
            BOOST_TEST(read_key(key).session == sid_of(l));

            co_await expect_released(l);
            BOOST_TEST(l.hold_count() == 0u);
            BOOST_TEST(read_key(key).session.empty());
            auto [third] = co_await l.release(tuple_awaitable);
            BOOST_TEST(third == errc::not_held, third.message());
        }
        co_await expect_no_sessions_named(prefix);
        ran = true;
    });
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(two_lock_objects_on_one_key_in_one_client_exclude_each_other_on_the_shared_session)
{
    const auto prefix = agent().unique_prefix("local_pair");
    const auto key = prefix + "lock";
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        {
            client c(ioc.get_executor(), lock_client(prefix));
            lock first(c, key);
            lock second(c, key);
            co_await expect_acquired(first);
            const auto first_token = first.fencing_token();
            const auto shared_sid = sid_of(first);

            // Consul alone would let the shared session "reclaim" the key; the lock must not.
            co_await expect_refused(second);
            BOOST_TEST(!second.is_held());

            auto waited = std::make_shared<completion>();
            auto on_acquired = record_into(waited);
            second.acquire(on_acquired);
            co_await sleep_for(500ms); // a window for a wrong grant to show
            BOOST_TEST(!waited->done, "the second acquire completed while the first held: " << waited->ec.message());
            BOOST_TEST(first.is_held());

            const auto released_at = clock_type::now();
            co_await expect_released(first);
            auto second_finished = [&] { return waited->done; };
            co_await require_eventually(second_finished, 2s, "the second object's acquire");
            BOOST_TEST_REQUIRE(!waited->ec, waited->ec.message());
            BOOST_TEST((waited->at >= released_at));
            BOOST_TEST_MESSAGE("local handoff took " << ms_between(released_at, waited->at) << " ms");
            BOOST_TEST(second.is_held());
            BOOST_TEST(!first.is_held());
            BOOST_TEST(second.fencing_token() > first_token);
            BOOST_TEST(sid_of(second) == shared_sid);
            BOOST_TEST(read_key(key).session == shared_sid);
            co_await expect_released(second);
            BOOST_TEST(read_key(key).session.empty());
        }
        co_await expect_no_sessions_named(prefix);
        ran = true;
    });
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(key_with_other_flags_is_a_conflict_and_stays_untouched)
{
    const auto prefix = agent().unique_prefix("flag_conflict");
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        {
            client c(ioc.get_executor(), lock_client(prefix));
            // Plain data (Flags 0, what a PUT without flags writes), an application's flags, a semaphore's flags.
            const std::array<std::uint64_t, 3> foreign{0u, 42u, 16210313421097356768ull};
            for (const auto flags : foreign) {
                BOOST_TEST_CONTEXT("flags " << flags)
                {
                    const auto key = prefix + "data-" + std::to_string(flags);
                    put_key(key, "precious", flags);
                    const auto before = read_key(key);
                    lock l(c, key);
                    auto [ec] = co_await l.acquire(tuple_awaitable);
                    BOOST_TEST(ec == errc::conflict, ec.message());
                    auto [tec, acquired] = co_await l.try_acquire(tuple_awaitable);
                    BOOST_TEST(tec == errc::conflict, tec.message());
                    BOOST_TEST(!acquired);
                    BOOST_TEST(!l.is_held());
                    BOOST_TEST(l.fencing_token() == 0u);
                    const auto after = read_key(key);
                    BOOST_TEST(after.flags == flags);
                    BOOST_TEST(after.modify_index == before.modify_index); // not written at all
                    BOOST_TEST(after.session.empty());
                    BOOST_TEST(raw_value(key).value_or("<absent>") == "precious");
                }
            }
        }
        co_await expect_no_sessions_named(prefix);
        ran = true;
    });
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(key_locked_go_style_by_a_raw_session_is_held_by_another_until_its_raw_release)
{
    const auto prefix = agent().unique_prefix("go_interop");
    const auto key = prefix + "lock";
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        const auto raw_sid = create_raw_session(prefix + "go");
        {
            client c(ioc.get_executor(), lock_client(prefix + "colock"));
            // What Go's api.Lock writes: ?acquire=<sid>&flags=<lock flag>.
            BOOST_TEST_REQUIRE(raw_lock_write(key, "acquire", raw_sid, colock::lock_flags, "go"));
            lock l(c, key);
            co_await expect_refused(l);
            BOOST_TEST(read_key(key).session == raw_sid);

            auto waited = std::make_shared<completion>();
            auto on_acquired = record_into(waited);
            l.acquire(on_acquired);
            co_await sleep_for(200ms);
            BOOST_TEST(!waited->done);
            BOOST_TEST_REQUIRE(raw_lock_write(key, "release", raw_sid, colock::lock_flags, "go"));
            auto finished = [&] { return waited->done; };
            co_await require_eventually(finished, 2s, "the acquire after Go's release");
            BOOST_TEST_REQUIRE(!waited->ec, waited->ec.message());
            BOOST_TEST(l.is_held());
            const auto k = read_key(key);
            BOOST_TEST(k.session == sid_of(l));
            BOOST_TEST(k.flags == colock::lock_flags);
            BOOST_TEST(k.modify_index == l.fencing_token());

            // The other way round: Go's acquire is refused while colock holds.
            BOOST_TEST(!raw_lock_write(key, "acquire", raw_sid, colock::lock_flags, "go"));
            co_await expect_released(l);
        }
        destroy_session(raw_sid);
        co_await expect_no_sessions_named(prefix);
        ran = true;
    });
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(destroying_a_held_lock_releases_the_key_in_the_background)
{
    const auto prefix = agent().unique_prefix("destroy_held");
    const auto key = prefix + "lock";
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        {
            client c(ioc.get_executor(), lock_client(prefix));
            auto l = std::make_unique<lock>(c, key);
            co_await expect_acquired(*l);
            const auto sid = sid_of(*l);
            const auto t0 = clock_type::now();
            l.reset();
            const bool released = co_await eventually_unlocked(key, 1s);
            BOOST_TEST(released, "the key is still locked 1 s after the lock object was destroyed");
            BOOST_TEST_MESSAGE("background release after destruction took " << ms_since(t0) << " ms");
            const auto k = read_key(key);
            BOOST_TEST(k.exists);
            BOOST_TEST(k.flags == colock::lock_flags);
            // The client's session lives on for other users.
            BOOST_TEST_REQUIRE(c.shared_session().id().has_value());
            BOOST_TEST(c.shared_session().id()->str() == sid);
        }
        co_await expect_no_sessions_named(prefix);
        ran = true;
    });
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(destroying_a_lock_with_a_pending_acquire_cancels_it)
{
    const auto prefix = agent().unique_prefix("destroy_waiting");
    const auto key = prefix + "lock";
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        {
            client c1(ioc.get_executor(), lock_client(prefix + "holder"));
            client c2(ioc.get_executor(), lock_client(prefix + "waiter"));
            lock holder(c1, key);
            co_await expect_acquired(holder);
            auto waiter = std::make_unique<lock>(c2, key);
            auto waited = std::make_shared<completion>();
            auto on_done = record_into(waited);
            waiter->acquire(on_done);
            co_await sleep_for(200ms);
            BOOST_TEST(!waited->done);
            const auto t0 = clock_type::now();
            waiter.reset();
            auto finished = [&] { return waited->done; };
            co_await require_eventually(finished, 1s, "the destroyed lock's acquire");
            BOOST_TEST(waited->ec == asio::error::operation_aborted, waited->ec.message());
            BOOST_TEST_MESSAGE("pending acquire completed " << ms_since(t0) << " ms after its lock was destroyed");
            co_await expect_released(holder);
            const auto taker = co_await stays_unlocked(key, 700ms);
            BOOST_TEST(taker.empty(), "the key was taken by " << taker << " after the waiting lock was destroyed");
        }
        co_await expect_no_sessions_named(prefix);
        ran = true;
    });
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(one_client_holds_1000_locks_on_one_session_within_the_connection_limit)
{
    constexpr std::size_t count = 1000;
    constexpr std::size_t workers = 8;
    const auto prefix = agent().unique_prefix("thousand");
    // Default client_options (a budget of 64 watch queries; the other keys are verified by polling) against the
    // agent's default limit of 200 connections per IP; a short TTL without checks, so the TTL is the trust window.
    auto opts = real_agent_options();
    opts.shared_session.name = prefix;
    opts.shared_session.ttl = 4s;
    opts.shared_session.lock_delay = 0ms;
    opts.shared_session.node_checks = std::vector<std::string>{};
    BOOST_TEST(opts.max_watches == 64u);
    BOOST_TEST(opts.max_connections < 200u);

    int too_many_lines = 0;
    std::vector<std::string> warnings;
    colock::logger log;
    log.min_level = colock::logger::level::warning;
    log.sink = [&](colock::logger::level, std::string_view line) {
        if (line.find("429") != std::string_view::npos || line.find("oo many") != std::string_view::npos)
            ++too_many_lines;
        if (warnings.size() < 5)
            warnings.emplace_back(line);
    };

    bool ran = false;
    run_async(
        [&](asio::io_context& ioc) -> asio::awaitable<void> {
            {
                client c(ioc.get_executor(), opts, log);
                // Written by lost() handlers: declared before the locks, so it outlives any late handler.
                std::vector<error_code> lost_ec(count);
                std::vector<bool> lost_done(count, false);
                std::size_t lost_count = 0;
                std::vector<std::unique_ptr<lock>> locks;
                for (std::size_t i = 0; i < count; ++i)
                    locks.push_back(std::make_unique<lock>(c, prefix + "k" + std::to_string(i)));

                // Acquire from a few coroutines at once.
                std::vector<std::size_t> order;
                std::vector<std::string> errors;
                std::size_t http_429 = 0;
                std::size_t next = 0;
                std::size_t finished_workers = 0;
                const auto t0 = clock_type::now();
                auto worker = [&]() -> asio::awaitable<void> {
                    while (next < count) {
                        const auto i = next++;
                        auto [ec] = co_await locks[i]->acquire(tuple_awaitable);
                        if (ec) {
                            if (ec == make_http_error(429))
                                ++http_429;
                            errors.push_back(locks[i]->key() + ": " + ec.message());
                        } else {
                            order.push_back(i);
                        }
                    }
                };
                auto on_worker_done = [&](std::exception_ptr e) {
                    if (e)
                        errors.push_back("a worker threw");
                    ++finished_workers;
                };
                for (std::size_t w = 0; w < workers; ++w)
                    asio::co_spawn(ioc, worker(), on_worker_done);
                auto all_done = [&] { return finished_workers == workers; };
                co_await require_eventually(all_done, 90s, "all acquisitions");
                BOOST_TEST_MESSAGE(count << " locks acquired by " << workers << " coroutines in " << ms_since(t0)
                                         << " ms");
                BOOST_TEST(http_429 == 0u);
                BOOST_TEST_REQUIRE(errors.empty(),
                                   errors.size() << " errors, first: " << (errors.empty() ? "" : errors.front()));
                BOOST_TEST_REQUIRE(order.size() == count);

                // One session for all of them, and Consul agrees: every key locked by it with the lock flags.
                BOOST_TEST_REQUIRE(c.shared_session().id().has_value());
                const auto sid = c.shared_session().id()->str();
                std::size_t held = 0, on_shared = 0;
                for (const auto& l : locks) {
                    held += l->is_held() ? 1 : 0;
                    on_shared += sid_of(*l) == sid ? 1 : 0;
                }
                BOOST_TEST(held == count);
                BOOST_TEST(on_shared == count);
                BOOST_TEST(agent().sessions_named(prefix) == std::vector<std::string>{sid});
                {
                    auto r = agent().request("GET", "/v1/kv/" + prefix + "?recurse&consistent");
                    BOOST_TEST_REQUIRE(r.status == 200u);
                    const auto entries = boost::json::parse(r.body);
                    std::size_t ours = 0;
                    for (const auto& e : entries.as_array()) {
                        const auto& o = e.as_object();
                        const auto* s = o.if_contains("Session");
                        if (s && s->is_string() && s->as_string() == sid &&
                            json_uint64(o, "Flags") == colock::lock_flags)
                            ++ours;
                    }
                    BOOST_TEST(ours == count);
                }

                // Follow every hold; then the operator deletes the key acquired last (the least likely to have a
                // blocking query of its own).
                for (std::size_t i = 0; i < count; ++i) {
                    auto on_lost = [&, i](error_code ec, error_code reason) {
                        lost_ec[i] = ec ? ec : reason;
                        lost_done[i] = true;
                        ++lost_count;
                    };
                    locks[i]->lost(on_lost);
                }
                const auto victim = order.back();
                const auto deleted_at = clock_type::now();
                delete_key(locks[victim]->key());
                auto one_lost = [&] { return lost_count >= 1; };
                co_await require_eventually(one_lost, 8s, "the deleted key's loss");
                const auto took = ms_since(deleted_at);
                BOOST_TEST_MESSAGE("the deleted key's loss was reported after " << took << " ms (TTL 4000 ms)");
                BOOST_TEST(lost_done[victim]);
                BOOST_TEST(lost_ec[victim] == errc::lock_lost, lost_ec[victim].message());
                BOOST_TEST(took < 4000);
                BOOST_TEST(!locks[victim]->is_held());

                // The others stay held through a full round of re-checks (every half TTL at least).
                co_await sleep_for(2500ms);
                BOOST_TEST(lost_count == 1u);
                held = 0;
                for (const auto& l : locks)
                    held += l->is_held() ? 1 : 0;
                BOOST_TEST(held == count - 1);
                BOOST_TEST(agent().sessions_named(prefix).size() == 1u);

                // Release them all (again from a few coroutines); every lost() then completes with not_held.
                std::vector<std::string> release_errors;
                std::size_t next_release = 0;
                std::size_t finished_releasers = 0;
                auto releaser = [&]() -> asio::awaitable<void> {
                    while (next_release < count) {
                        const auto i = next_release++;
                        if (i == victim)
                            continue;
                        auto [ec] = co_await locks[i]->release(tuple_awaitable);
                        if (ec)
                            release_errors.push_back(locks[i]->key() + ": " + ec.message());
                    }
                };
                auto on_releaser_done = [&](std::exception_ptr e) {
                    if (e)
                        release_errors.push_back("a releaser threw");
                    ++finished_releasers;
                };
                const auto t1 = clock_type::now();
                for (std::size_t w = 0; w < workers; ++w)
                    asio::co_spawn(ioc, releaser(), on_releaser_done);
                auto all_released = [&] { return finished_releasers == workers && lost_count == count; };
                co_await require_eventually(all_released, 60s, "all releases and not_held losses");
                BOOST_TEST_MESSAGE(count - 1 << " locks released in " << ms_since(t1) << " ms");
                BOOST_TEST(release_errors.empty(),
                           release_errors.size() << " errors, first: "
                                                 << (release_errors.empty() ? "" : release_errors.front()));
                std::size_t not_held = 0;
                for (std::size_t i = 0; i < count; ++i)
                    not_held += (i != victim && lost_ec[i] == errc::not_held) ? 1 : 0;
                BOOST_TEST(not_held == count - 1);
                {
                    auto r = agent().request("GET", "/v1/kv/" + prefix + "?recurse&consistent");
                    BOOST_TEST_REQUIRE(r.status == 200u);
                    std::size_t locked = 0;
                    const auto entries = boost::json::parse(r.body);
                    for (const auto& e : entries.as_array())
                        locked += e.as_object().contains("Session") ? 1 : 0;
                    BOOST_TEST(locked == 0u);
                }
            }
            co_await expect_no_sessions_named(prefix);
            ran = true;
        },
        150s);
    BOOST_TEST(ran);
    BOOST_TEST(too_many_lines == 0, "log lines about HTTP 429: " << too_many_lines);
    for (const auto& w : warnings)
        BOOST_TEST_MESSAGE("client warning: " << w);
}

BOOST_AUTO_TEST_SUITE_END()
