// colock::lock against Consul's own Go client (api.Lock, test/interop/go) on one real agent: Go and colock
// contenders take turns on one key hundreds of times and a shared history shows no overlap and rising fencing
// tokens (a run whose colock side skips the lock must be flagged); colock waits while a Go holder holds and
// follows as soon as it unlocks; both refuse a key that is not a lock (ErrLockConflict / errc::conflict).

#include <colock/consul/client.hpp>
#include <colock/lock.hpp>
#include <colock/semaphore_options.hpp>

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

#include <csignal>
#include <memory>
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

BOOST_AUTO_TEST_SUITE(test_interop_lock)

BOOST_AUTO_TEST_CASE(go_and_colock_contenders_take_turns_300_times_without_overlap_and_with_rising_tokens)
{
    scratch_dir dir("lock_contention");
    const auto prefix = agent().unique_prefix("contention");
    const auto key = prefix + "lock";
    constexpr int go_peers = 2;
    constexpr int go_rounds = 75;
    constexpr int colock_locks = 2;
    constexpr int colock_rounds = 75;
    // Pauses long enough that the key is often free, so that both sides get many turns: with a key that is almost
    // never free (think 0-10 ms) Go's lock loop, which writes as soon as a read shows the key free, wins most
    // handovers (17-26 of 300 went between Go and colock in such runs), which says nothing about exclusion.
    round_timing timing;
    timing.think_min = 5ms;
    timing.think_max = 30ms;
    contender_stats stats;
    bool ran = false;
    const auto started = clock_type::now();
    long long colock_ms = 0;

    std::vector<std::unique_ptr<go_peer>> peers;
    for (int i = 0; i < go_peers; ++i)
        peers.push_back(start_go_lock(dir, key, "go-" + std::to_string(i), go_rounds, timing));
    run_async(
        [&](asio::io_context& ioc) -> asio::awaitable<void> {
            using namespace asio::experimental::awaitable_operators;
            {
                history_file h(history_path(dir));
                // One lock on the client's shared session, one with a session of its own per acquisition (as Go's).
                client c0(ioc.get_executor(), lock_client(prefix));
                client c1(ioc.get_executor(), lock_client(prefix));
                auto own = lock_options::with_own_session(10s, 0ms);
                own.own_session->name = prefix + "own";
                lock l0(c0, key);
                lock l1(c1, key, own);
                co_await (colock_contender(l0, h, "colock-0", colock_rounds, timing, true, 1, stats) &&
                          colock_contender(l1, h, "colock-1", colock_rounds, timing, true, 2, stats));
                colock_ms = ms_since(started);
            }
            co_await expect_peers_succeeded(peers, 30s);
            co_await expect_no_sessions_named(prefix);
            co_await expect_no_sessions_named("colock interop ");
            ran = true;
        },
        75s);
    BOOST_TEST(ran);
    BOOST_TEST(stats.errors.empty(), stats.errors.size() << " errors, first: "
                                                         << (stats.errors.empty() ? "" : stats.errors.front()));

    auto r = exclusion_checker::check_file(history_path(dir), 1);
    BOOST_TEST_MESSAGE("lock contention: " << r.summary() << "; colock side done after " << colock_ms
                                           << " ms (longest acquire " << stats.wait_max_ms << " ms), all done after "
                                           << ms_since(started) << " ms");
    log_violations(r);
    BOOST_TEST(r.ok());
    BOOST_TEST(r.max_concurrent == 1u);
    BOOST_TEST(r.total_acquisitions() == static_cast<std::size_t>(go_peers * go_rounds + colock_locks * colock_rounds));
    for (int i = 0; i < go_peers; ++i)
        BOOST_TEST(r.acquisitions["go-" + std::to_string(i)] == static_cast<std::size_t>(go_rounds));
    for (int i = 0; i < colock_locks; ++i)
        BOOST_TEST(r.acquisitions["colock-" + std::to_string(i)] == static_cast<std::size_t>(colock_rounds));
    // The lock really moves between the Go and the colock side while both contend, not one side after the other.
    BOOST_TEST(r.handoffs_between_groups() >= 40u, r.summary());
}

BOOST_AUTO_TEST_CASE(a_colock_side_that_skips_the_lock_is_flagged_as_overlapping_with_go)
{
    // Positive control: the same run with a colock side that writes its lines without taking the lock must fail the
    // checker, or the clean verdict above proves nothing.
    scratch_dir dir("lock_control");
    const auto key = agent().unique_prefix("control") + "lock";
    constexpr int rounds = 40;
    round_timing timing;
    contender_stats stats;
    bool ran = false;
    std::vector<std::unique_ptr<go_peer>> peers;
    peers.push_back(start_go_lock(dir, key, "go-0", rounds, timing));
    run_async(
        [&](asio::io_context& ioc) -> asio::awaitable<void> {
            {
                history_file h(history_path(dir));
                client c(ioc.get_executor(), lock_client(key));
                lock unused(c, key);
                timing.hold_min = 5ms;
                timing.hold_max = 15ms;
                co_await colock_contender(unused, h, "colock-rogue", rounds, timing, false, 3, stats);
            }
            co_await expect_peers_succeeded(peers, 30s);
            ran = true;
        },
        45s);
    BOOST_TEST(ran);
    BOOST_TEST(stats.errors.empty());
    auto r = exclusion_checker::check_file(history_path(dir), 1);
    BOOST_TEST_MESSAGE("positive control: " << r.summary());
    BOOST_TEST(!r.ok(), "the checker missed a colock side that never took the lock: " << r.summary());
    BOOST_TEST(r.max_concurrent == 2u);
    BOOST_TEST(r.acquisitions["go-0"] == static_cast<std::size_t>(rounds));
    BOOST_TEST(r.acquisitions["colock-rogue"] == static_cast<std::size_t>(rounds));
    BOOST_TEST(has_violation(r, "2 inside at once, limit 1"), r.summary());
}

BOOST_AUTO_TEST_CASE(colock_waits_while_a_go_lock_holds_and_takes_it_once_go_unlocks)
{
    scratch_dir dir("lock_handover");
    const auto prefix = agent().unique_prefix("handover");
    const auto key = prefix + "lock";
    bool ran = false;
    auto holder = start_go_lock(dir, key, "go-holder", 1, round_timing{}, {"-until-signal"});
    run_async(
        [&](asio::io_context& ioc) -> asio::awaitable<void> {
            co_await require_eventually([&] { return go_peer_holds(*holder); }, 15s, "the Go peer holds the lock");
            const auto go_key = read_key(key);
            BOOST_TEST(go_key.flags == lock_flags);
            BOOST_TEST_REQUIRE(!go_key.session.empty());
            BOOST_TEST(raw_value(key).value_or("(absent)") == "go-holder");
            {
                history_file h(history_path(dir));
                client c(ioc.get_executor(), lock_client(prefix));
                client other(ioc.get_executor(), lock_client(prefix));
                lock waiter(c, key);
                lock prober(other, key);
                co_await expect_refused(prober); // Go's lock is a lock to colock: held by another session

                auto done = std::make_shared<completion>();
                waiter.acquire(record_into(done));
                co_await sleep_for(1500ms);
                BOOST_TEST(!done->done, "colock took the key while the Go lock held it: " << done->ec.message());
                BOOST_TEST(!waiter.is_held());
                BOOST_TEST(read_key(key).session == go_key.session);

                const auto unlocked_at = clock_type::now();
                holder->signal(SIGTERM); // the peer leaves its critical section and calls Unlock
                co_await require_eventually([&] { return done->done; }, 5s, "colock's acquire after Go's Unlock");
                BOOST_TEST_REQUIRE(!done->ec, done->ec.message());
                BOOST_TEST_REQUIRE(waiter.is_held());
                h.enter("colock-0", waiter.fencing_token());
                BOOST_TEST_MESSAGE("colock took the lock " << ms_between(unlocked_at, done->at)
                                                           << " ms after SIGTERM to the Go holder");
                BOOST_TEST(ms_between(unlocked_at, done->at) < 2000);
                const auto ours = read_key(key);
                BOOST_TEST(ours.session == waiter.session_id()->str());
                BOOST_TEST(ours.session != go_key.session);
                BOOST_TEST(ours.lock_index == go_key.lock_index + 1);
                BOOST_TEST(waiter.fencing_token() > go_key.modify_index);

                const bool ended = co_await wait_for_exit(*holder, 10s);
                BOOST_TEST_REQUIRE(ended);
                BOOST_TEST(holder->exit_code().value_or(-1) == 0, holder->output());
                h.exit("colock-0");
                co_await expect_released(waiter);
            }
            co_await expect_no_sessions_named(prefix);
            ran = true;
        },
        40s);
    BOOST_TEST(ran);
    auto r = exclusion_checker::check_file(history_path(dir), 1);
    BOOST_TEST(r.ok(), r.summary());
    BOOST_TEST((r.order == std::vector<std::string>{"go-holder", "colock-0"}), r.summary());
}

BOOST_AUTO_TEST_CASE(colock_and_go_both_refuse_keys_that_are_not_locks_and_leave_them_untouched)
{
    scratch_dir dir("lock_conflict");
    const auto prefix = agent().unique_prefix("conflict");
    const auto data_key = prefix + "data";
    const auto sem_prefix = prefix + "sem";
    const auto sem_record = sem_prefix + "/.lock";
    bool ran = false;
    put_key(data_key, "data", 42);
    run_async(
        [&](asio::io_context& ioc) -> asio::awaitable<void> {
            // A Go semaphore leaves its coordination record behind: a key a lock must not take either.
            std::vector<std::unique_ptr<go_peer>> sem;
            sem.push_back(start_go_semaphore(dir, sem_prefix, 2, "go-sem", 1, round_timing{}));
            co_await expect_peers_succeeded(sem, 20s);
            BOOST_TEST_REQUIRE(read_key(sem_record).flags == semaphore_flags);
            const auto record_before = read_key(sem_record);

            client c(ioc.get_executor(), lock_client(prefix));
            const std::vector<std::pair<std::string, std::string>> cases{{data_key, "go-data"},
                                                                         {sem_record, "go-record"}};
            for (const auto& [key, who] : cases) {
                BOOST_TEST_CONTEXT("key " << key)
                {
                    lock l(c, key);
                    auto [ec] = co_await l.acquire(tuple_awaitable);
                    BOOST_TEST(ec == make_error_code(errc::conflict), ec.message());
                    BOOST_TEST(!l.is_held());

                    std::vector<std::unique_ptr<go_peer>> go;
                    go.push_back(start_go_lock(dir, key, who, 1, round_timing{}));
                    const bool ended = co_await wait_for_exit(*go.front(), 20s);
                    BOOST_TEST_REQUIRE(ended);
                    BOOST_TEST(go.front()->exit_code().value_or(-1) == 3, go.front()->output());
                    BOOST_TEST(go.front()->output().find("conflict: Existing key does not match lock use") !=
                                   std::string::npos,
                               go.front()->output());
                }
            }
            const auto data_after = read_key(data_key);
            BOOST_TEST(data_after.flags == 42u);
            BOOST_TEST(data_after.session.empty());
            BOOST_TEST(raw_value(data_key).value_or("(absent)") == "data");
            const auto record_after = read_key(sem_record);
            BOOST_TEST(record_after.modify_index == record_before.modify_index);
            BOOST_TEST(record_after.session.empty());
            ran = true;
        },
        45s);
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_SUITE_END()
