// colock::semaphore against Consul's own Go client (api.Semaphore, test/interop/go) on one real agent: Go and
// colock contenders share one semaphore for hundreds of rounds and a shared history never shows more holders than
// its limit (and a run whose colock side skips the semaphore must be flagged); each side waits for a semaphore the other side fills and follows when a slot is given back; a Go
// holder killed with SIGKILL is pruned by colock once its session is gone, and a colock holder whose session an
// operator destroys is pruned by Go; both refuse a record with another limit or a key that is not a semaphore.

#include <colock/consul/client.hpp>
#include <colock/semaphore.hpp>

#include "async_test.hpp"
#include "consul_agent.hpp"
#include "exclusion_checker.hpp"
#include "fault_helpers.hpp"
#include "go_peer.hpp"
#include "history_file.hpp"
#include "interop_helpers.hpp"
#include "kv_probe.hpp"
#include "lock_helpers.hpp"
#include "test_options.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/json/parse.hpp>

#include <csignal>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace colock;
using namespace colock::consul;
using namespace colock::test;
using namespace std::chrono_literals;

BOOST_TEST_GLOBAL_FIXTURE(go_peer_fixture);
BOOST_TEST_GLOBAL_FIXTURE(consul_agent_fixture);

namespace {

consul_agent& agent() { return consul_agent::instance(); }

} // namespace

BOOST_AUTO_TEST_SUITE(test_interop_semaphore)

BOOST_AUTO_TEST_CASE(go_and_colock_contenders_share_a_two_slot_semaphore_200_times_without_exceeding_it)
{
    scratch_dir dir("semaphore_contention");
    const auto base = agent().unique_prefix("sem_contention");
    const auto prefix = base + "sem";
    constexpr unsigned limit = 2;
    constexpr int go_peers = 2;
    constexpr int go_rounds = 50;
    constexpr int colock_sems = 2;
    constexpr int colock_rounds = 50;
    round_timing timing;
    timing.hold_min = 5ms;
    timing.hold_max = 20ms;
    timing.think_min = 5ms;
    timing.think_max = 30ms;
    contender_stats stats;
    bool ran = false;
    const auto started = clock_type::now();
    long long colock_ms = 0;

    std::vector<std::unique_ptr<go_peer>> peers;
    for (int i = 0; i < go_peers; ++i)
        peers.push_back(start_go_semaphore(dir, prefix, limit, "go-" + std::to_string(i), go_rounds, timing));
    run_async(
        [&](asio::io_context& ioc) -> asio::awaitable<void> {
            using namespace asio::experimental::awaitable_operators;
            {
                history_file h(history_path(dir));
                client c0(ioc.get_executor(), lock_client(base));
                client c1(ioc.get_executor(), lock_client(base));
                semaphore s0(c0, prefix, limit, named_session(base + "colock-0"));
                semaphore s1(c1, prefix, limit, named_session(base + "colock-1"));
                co_await (colock_contender(s0, h, "colock-0", colock_rounds, timing, true, 1, stats) &&
                          colock_contender(s1, h, "colock-1", colock_rounds, timing, true, 2, stats));
                colock_ms = ms_since(started);
            }
            co_await expect_peers_succeeded(peers, 40s);
            co_await expect_no_sessions_named(base);
            co_await expect_no_sessions_named("colock interop ");
            ran = true;
        },
        75s);
    BOOST_TEST(ran);
    BOOST_TEST(stats.errors.empty(), stats.errors.size() << " errors, first: "
                                                         << (stats.errors.empty() ? "" : stats.errors.front()));

    auto r = exclusion_checker::check_file(history_path(dir), limit);
    BOOST_TEST_MESSAGE("semaphore contention: " << r.summary() << "; colock side done after " << colock_ms
                                                << " ms (longest acquire " << stats.wait_max_ms
                                                << " ms), all done after " << ms_since(started) << " ms");
    log_violations(r);
    BOOST_TEST(r.ok());
    BOOST_TEST(r.max_concurrent == limit); // the semaphore was full at times, never over
    BOOST_TEST(r.total_acquisitions() == static_cast<std::size_t>(go_peers * go_rounds + colock_sems * colock_rounds));
    for (int i = 0; i < go_peers; ++i)
        BOOST_TEST(r.acquisitions["go-" + std::to_string(i)] == static_cast<std::size_t>(go_rounds));
    for (int i = 0; i < colock_sems; ++i)
        BOOST_TEST(r.acquisitions["colock-" + std::to_string(i)] == static_cast<std::size_t>(colock_rounds));
    BOOST_TEST(r.handoffs_between_groups() >= 40u, r.summary());

    // Positive control on the same history: it really had `limit` holders at once, so a checker told the limit is
    // one less must flag it.
    const auto tighter = exclusion_checker::check_file(history_path(dir), limit - 1);
    BOOST_TEST(!tighter.ok(), "a history with " << limit << " holders at once passed a limit of " << limit - 1);
    BOOST_TEST(has_violation(tighter, std::to_string(limit) + " inside at once"), tighter.summary());

    // Nothing left behind: the record has no holders and every contender key went with its session.
    const auto record = read_semaphore_record(prefix);
    BOOST_TEST(record.exists);
    BOOST_TEST(record.flags == semaphore_flags);
    BOOST_TEST(record.limit == static_cast<std::int64_t>(limit));
    BOOST_TEST(record.holders.empty(), record.holders.size() << " holder(s) left in the record");
    BOOST_TEST(contender_sessions(prefix).empty());
}

BOOST_AUTO_TEST_CASE(a_colock_side_that_skips_the_semaphore_is_flagged_as_exceeding_it)
{
    // Positive control: Go peers that use the semaphore and two colock contenders that write their lines without
    // taking a slot; the checker must see more holders than the limit, or the clean verdict above proves nothing.
    scratch_dir dir("semaphore_control");
    const auto base = agent().unique_prefix("sem_control");
    const auto prefix = base + "sem";
    constexpr unsigned limit = 2;
    constexpr int rounds = 30;
    round_timing timing;
    timing.hold_min = 10ms;
    timing.hold_max = 20ms;
    timing.think_min = 0ms;
    timing.think_max = 5ms;
    contender_stats stats;
    bool ran = false;
    std::vector<std::unique_ptr<go_peer>> peers;
    for (int i = 0; i < 2; ++i)
        peers.push_back(start_go_semaphore(dir, prefix, limit, "go-" + std::to_string(i), rounds, timing));
    run_async(
        [&](asio::io_context& ioc) -> asio::awaitable<void> {
            using namespace asio::experimental::awaitable_operators;
            {
                history_file h(history_path(dir));
                client c(ioc.get_executor(), lock_client(base));
                semaphore unused0(c, prefix, limit, named_session(base + "rogue-0"));
                semaphore unused1(c, prefix, limit, named_session(base + "rogue-1"));
                co_await (colock_contender(unused0, h, "colock-rogue-0", rounds, timing, false, 5, stats) &&
                          colock_contender(unused1, h, "colock-rogue-1", rounds, timing, false, 6, stats));
            }
            co_await expect_peers_succeeded(peers, 40s);
            ran = true;
        },
        60s);
    BOOST_TEST(ran);
    BOOST_TEST(stats.errors.empty());
    auto r = exclusion_checker::check_file(history_path(dir), limit);
    BOOST_TEST_MESSAGE("positive control: " << r.summary());
    BOOST_TEST(!r.ok(), "the checker missed colock contenders that never took a slot: " << r.summary());
    BOOST_TEST(r.max_concurrent > limit);
    BOOST_TEST(has_violation(r, "inside at once, limit 2"), r.summary());
}

BOOST_AUTO_TEST_CASE(each_side_waits_for_a_semaphore_the_other_side_fills_and_follows_when_a_slot_is_given_back)
{
    scratch_dir dir("semaphore_handover");
    const auto base = agent().unique_prefix("sem_handover");
    const auto prefix = base + "sem";
    bool ran = false;
    run_async(
        [&](asio::io_context& ioc) -> asio::awaitable<void> {
            client c(ioc.get_executor(), lock_client(base));
            semaphore s(c, prefix, 1, named_session(base + "colock"));

            // Go holds the only slot: colock waits, and follows as soon as Go releases.
            auto go = start_go_semaphore(dir, prefix, 1, "go-holder", 1, round_timing{}, "10s", {"-until-signal"});
            co_await require_eventually([&] { return go_peer_holds(*go); }, 15s, "the Go peer holds the slot");
            const auto go_record = read_semaphore_record(prefix);
            BOOST_TEST_REQUIRE(go_record.holders.size() == 1u);
            BOOST_TEST(go_record.limit == 1);
            BOOST_TEST(go_record.flags == semaphore_flags);
            auto [tec, took] = co_await s.try_acquire(tuple_awaitable);
            BOOST_TEST(!tec, tec.message());
            BOOST_TEST(!took, "colock took a slot of a full semaphore");
            auto done = std::make_shared<completion>();
            s.acquire(record_into(done));
            co_await sleep_for(1500ms);
            BOOST_TEST(!done->done, "colock acquired while the Go peer held the only slot: " << done->ec.message());
            const auto released_at = clock_type::now();
            go->signal(SIGTERM);
            co_await require_eventually([&] { return done->done; }, 5s, "colock's acquire after Go's Release");
            BOOST_TEST_REQUIRE(!done->ec, done->ec.message());
            BOOST_TEST_MESSAGE("colock took the slot " << ms_between(released_at, done->at)
                                                       << " ms after SIGTERM to the Go holder");
            BOOST_TEST(ms_between(released_at, done->at) < 2000);
            BOOST_TEST((read_semaphore_record(prefix).holders == std::set<std::string>{sid_of(s)}));
            const bool go_ended = co_await wait_for_exit(*go, 10s);
            BOOST_TEST(go_ended);
            BOOST_TEST(go->exit_code().value_or(-1) == 0, go->output());

            // colock holds the only slot: Go waits, and follows as soon as colock releases.
            auto waiter = start_go_semaphore(dir, prefix, 1, "go-waiter", 1, round_timing{}, "10s", {"-until-signal"});
            co_await sleep_for(1500ms);
            BOOST_TEST(!go_peer_holds(*waiter), "Go acquired while colock held the only slot");
            BOOST_TEST(waiter->running(), waiter->output());
            const auto given_back_at = clock_type::now();
            auto [rec] = co_await s.release(tuple_awaitable);
            BOOST_TEST_REQUIRE(!rec, rec.message());
            co_await require_eventually([&] { return go_peer_holds(*waiter); }, 5s, "Go's Acquire after colock's release");
            BOOST_TEST_MESSAGE("Go took the slot within " << ms_since(given_back_at) << " ms of colock's release");
            const auto after = read_semaphore_record(prefix);
            BOOST_TEST(after.holders.size() == 1u);
            BOOST_TEST(!after.holders.contains(sid_of(s)));
            waiter->signal(SIGTERM);
            const bool waiter_ended = co_await wait_for_exit(*waiter, 10s);
            BOOST_TEST(waiter_ended);
            BOOST_TEST(waiter->exit_code().value_or(-1) == 0, waiter->output());
            ran = true;
        },
        45s);
    BOOST_TEST(ran);
    auto r = exclusion_checker::check_file(history_path(dir), 1);
    BOOST_TEST(r.ok(), r.summary());
}

BOOST_AUTO_TEST_CASE(a_killed_go_holder_is_pruned_by_colock_once_its_session_is_gone)
{
    scratch_dir dir("semaphore_killed_go");
    const auto base = agent().unique_prefix("sem_killed_go");
    const auto prefix = base + "sem";
    bool ran = false;
    run_async(
        [&](asio::io_context& ioc) -> asio::awaitable<void> {
            // TTL 2 s: Consul invalidates a session that stops renewing after at most 2 x TTL.
            auto go = start_go_semaphore(dir, prefix, 1, "go-doomed", 1, round_timing{}, "2s", {"-until-signal"});
            co_await require_eventually([&] { return go_peer_holds(*go); }, 15s, "the Go peer holds the slot");
            const auto go_sessions = contender_sessions(prefix);
            BOOST_TEST_REQUIRE(go_sessions.size() == 1u);
            const auto go_sid = *go_sessions.begin();
            BOOST_TEST((read_semaphore_record(prefix).holders == std::set<std::string>{go_sid}));

            client c(ioc.get_executor(), lock_client(base));
            semaphore s(c, prefix, 1, named_session(base + "colock"));
            auto done = std::make_shared<completion>();
            s.acquire(record_into(done));
            co_await sleep_for(300ms);
            BOOST_TEST(!done->done);

            const auto killed_at = clock_type::now();
            go->signal(SIGKILL); // no Release, no session destroy: only the TTL ends it
            const bool go_ended = co_await wait_for_exit(*go, 5s);
            BOOST_TEST(go_ended);
            BOOST_TEST(go->exit_code().value_or(0) == -SIGKILL);
            co_await require_eventually([&] { return done->done; }, 12s, "colock's acquire after the Go holder died");
            BOOST_TEST_REQUIRE(!done->ec, done->ec.message());
            BOOST_TEST_MESSAGE("colock took the slot " << ms_between(killed_at, done->at)
                                                       << " ms after the Go holder was killed (session TTL 2 s)");
            // The dead holder is gone from the record (pruned by colock's write), and so are its session and key.
            const auto record = read_semaphore_record(prefix);
            BOOST_TEST((record.holders == std::set<std::string>{sid_of(s)}));
            BOOST_TEST(!record.holders.contains(go_sid));
            BOOST_TEST((contender_sessions(prefix) == std::set<std::string>{sid_of(s)}));
            BOOST_TEST(agent().sessions_named("colock interop go-doomed").empty());
            auto [rec] = co_await s.release(tuple_awaitable);
            BOOST_TEST(!rec, rec.message());
            ran = true;
        },
        40s);
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(a_colock_holder_whose_session_an_operator_destroys_is_pruned_by_go)
{
    scratch_dir dir("semaphore_destroyed_colock");
    const auto base = agent().unique_prefix("sem_destroyed_colock");
    const auto prefix = base + "sem";
    bool ran = false;
    run_async(
        [&](asio::io_context& ioc) -> asio::awaitable<void> {
            client c(ioc.get_executor(), lock_client(base));
            semaphore s(c, prefix, 1, named_session(base + "colock"));
            auto [ec] = co_await s.acquire(tuple_awaitable);
            BOOST_TEST_REQUIRE(!ec, ec.message());
            const auto sid = sid_of(s);
            BOOST_TEST((read_semaphore_record(prefix).holders == std::set<std::string>{sid}));

            auto go = start_go_semaphore(dir, prefix, 1, "go-waiter", 1, round_timing{}, "10s", {"-until-signal"});
            co_await sleep_for(1000ms);
            BOOST_TEST(!go_peer_holds(*go), "Go acquired while colock held the only slot");

            const auto destroyed_at = clock_type::now();
            destroy_session(sid); // delete behaviour: the contender key goes with it, so the holder is dead
            co_await require_eventually([&] { return go_peer_holds(*go); }, 5s, "Go's Acquire after the destroy");
            BOOST_TEST_MESSAGE("Go took the slot " << ms_since(destroyed_at) << " ms after colock's session was destroyed");
            auto [lec, reason] = co_await s.lost(tuple_awaitable);
            BOOST_TEST(!lec, lec.message());
            BOOST_TEST(reason != error_code(), "lost() gave no reason");
            BOOST_TEST(!s.is_held());
            const auto record = read_semaphore_record(prefix);
            BOOST_TEST(record.holders.size() == 1u);
            BOOST_TEST(!record.holders.contains(sid));
            go->signal(SIGTERM);
            const bool go_ended = co_await wait_for_exit(*go, 10s);
            BOOST_TEST(go_ended);
            BOOST_TEST(go->exit_code().value_or(-1) == 0, go->output());
            ran = true;
        },
        40s);
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(both_refuse_a_record_with_another_limit_or_a_key_that_is_not_a_semaphore)
{
    scratch_dir dir("semaphore_conflict");
    const auto base = agent().unique_prefix("sem_conflict");
    const auto go_made = base + "go_made";
    const auto colock_made = base + "colock_made";
    const auto foreign = base + "foreign";
    put_key(foreign + "/.lock", "{}", 0); // a plain key where the record belongs
    bool ran = false;
    run_async(
        [&](asio::io_context& ioc) -> asio::awaitable<void> {
            client c(ioc.get_executor(), lock_client(base));
            // A record with limit 2 made by Go, and one made by colock.
            std::vector<std::unique_ptr<go_peer>> maker;
            maker.push_back(start_go_semaphore(dir, go_made, 2, "go-maker", 1, round_timing{}));
            co_await expect_peers_succeeded(maker, 20s);
            {
                semaphore s(c, colock_made, 2, named_session(base + "maker"));
                auto [ec] = co_await s.acquire(tuple_awaitable);
                BOOST_TEST_REQUIRE(!ec, ec.message());
                auto [rec] = co_await s.release(tuple_awaitable);
                BOOST_TEST_REQUIRE(!rec, rec.message());
            }
            BOOST_TEST(read_semaphore_record(go_made).limit == 2);
            BOOST_TEST(read_semaphore_record(colock_made).limit == 2);
            BOOST_TEST(read_semaphore_record(colock_made).flags == semaphore_flags);

            for (const auto& prefix : {go_made, colock_made}) {
                BOOST_TEST_CONTEXT("record made at " << prefix)
                {
                    semaphore s(c, prefix, 3, named_session(base + "three"));
                    auto [ec] = co_await s.acquire(tuple_awaitable);
                    BOOST_TEST(ec == make_error_code(errc::limit_conflict), ec.message());
                    BOOST_TEST(!s.is_held());
                    auto go = start_go_semaphore(dir, prefix, 3, "go-three", 1, round_timing{});
                    const bool go_ended = co_await wait_for_exit(*go, 20s);
                    BOOST_TEST_REQUIRE(go_ended);
                    BOOST_TEST(go->exit_code().value_or(-1) == 1, go->output());
                    BOOST_TEST(go->output().find("semaphore limit conflict (lock: 2, local: 3)") != std::string::npos,
                               go->output());
                    const auto record = read_semaphore_record(prefix);
                    BOOST_TEST(record.limit == 2);
                    BOOST_TEST(record.holders.empty());
                }
            }

            {
                semaphore s(c, foreign, 2, named_session(base + "foreign"));
                auto [ec] = co_await s.acquire(tuple_awaitable);
                BOOST_TEST(ec == make_error_code(errc::conflict), ec.message());
                BOOST_TEST(!s.is_held());
            }
            auto go = start_go_semaphore(dir, foreign, 2, "go-foreign", 1, round_timing{});
            const bool go_ended = co_await wait_for_exit(*go, 20s);
            BOOST_TEST_REQUIRE(go_ended);
            BOOST_TEST(go->exit_code().value_or(-1) == 3, go->output());
            BOOST_TEST(go->output().find("conflict: Existing key does not match semaphore use") != std::string::npos,
                       go->output());
            BOOST_TEST(raw_value(foreign + "/.lock").value_or("(absent)") == "{}");
            BOOST_TEST(read_key(foreign + "/.lock").flags == 0u);
            co_await expect_no_sessions_named(base);
            co_await expect_no_sessions_named("colock interop ");
            // The refused contenders' keys went with their sessions.
            for (const auto& prefix : {go_made, colock_made, foreign})
                BOOST_TEST(contender_sessions(prefix).empty(), prefix);
            ran = true;
        },
        60s);
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_SUITE_END()
