// The client's watch budget against the real agent: with client_options::max_watches = 1, keys beyond
// the one blocking query are verified through /v1/txn reads. A waiter without a watch still takes
// the lock soon after it is freed (within its poll interval), and a holder without a watch still
// learns of a deleted key within the session TTL. Semaphores wait within the same budget: many of
// them leave the pool's connections to everything else.

#include <colock/consul/client.hpp>
#include <colock/lock.hpp>
#include <colock/semaphore.hpp>

#include "async_test.hpp"
#include "consul/client_impl.hpp"
#include "consul/watch_service.hpp"
#include "consul_agent.hpp"
#include "kv_probe.hpp"
#include "lock_helpers.hpp"

#include <boost/asio/co_spawn.hpp>

#include <memory>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace colock;
using namespace colock::consul;
using namespace colock::test;
using namespace std::chrono_literals;

BOOST_TEST_GLOBAL_FIXTURE(consul_agent_fixture);

BOOST_AUTO_TEST_SUITE(test_lock_budget)

BOOST_AUTO_TEST_CASE(keys_beyond_the_budget_are_polled_yet_handed_over_and_verified)
{
    auto& agent = consul_agent::instance();
    const auto prefix = agent.unique_prefix("lock_budget");
    const std::string name = "colock-test-budget-" + prefix;
    bool finished = false;
    run_async(
        [&](asio::io_context& io) -> asio::awaitable<void> {
            auto other_options = lock_client(name + "-other");
            client other(io.get_executor(), other_options);
            auto options = lock_client(name, 2s); // trust window 2 s: held keys re-checked every second
            options.max_watches = 1;
            client limited(io.get_executor(), options);
            auto& watches = limited.impl()->watches();

            // The limited client holds one key: its watch takes the only blocking query.
            lock first(limited, prefix + "first");
            co_await expect_acquired(first);
            co_await require_eventually([&] { return watches.blocking_queries() == 1; }, 2s,
                                        "the held key's watch started");

            // Another client holds a second key; the limited client waits for it without a watch.
            lock theirs(other, prefix + "second");
            co_await expect_acquired(theirs);
            lock_options waiting_options;
            waiting_options.poll_interval = 300ms;
            lock mine(limited, prefix + "second", waiting_options);
            auto got = std::make_shared<completion>();
            mine.acquire(record_into(got));
            co_await require_eventually([&] { return watches.polled_keys() == 1; }, 2s, "the waiting key is polled");
            BOOST_TEST(watches.blocking_queries() == 1u); // never more than the budget
            BOOST_TEST(!got->done);

            const auto freed = clock_type::now();
            co_await expect_released(theirs);
            co_await require_eventually([&] { return got->done; }, 3s, "the polled waiter took the lock");
            BOOST_TEST(!got->ec, got->ec.message());
            const auto took = ms_between(freed, got->at);
            BOOST_TEST_MESSAGE("polled waiter took the lock " << took << " ms after the release (poll every 300 ms)");
            BOOST_TEST(took < 1500);
            BOOST_TEST(mine.is_held());
            BOOST_TEST(watches.blocking_queries() == 1u);
            const auto polls_before = watches.poll_transactions();

            // Deleted behind the holder's back: a key without a watch is still reported lost within the TTL.
            BOOST_TEST_REQUIRE(watches.polled_keys() == 1u); // the second key, now held, is verified by polling
            const auto deleted = clock_type::now();
            delete_key(prefix + "second");
            auto reason = co_await lost_reason(mine);
            const auto noticed = ms_between(deleted, clock_type::now());
            BOOST_TEST_MESSAGE("deleted key without a watch reported lost after " << noticed << " ms (TTL 2000 ms)");
            BOOST_TEST(reason == errc::lock_lost, reason.message());
            BOOST_TEST(noticed < 2000);
            BOOST_TEST(watches.poll_transactions() > polls_before);
            BOOST_TEST(first.is_held()); // the watched key is untouched

            co_await expect_released(first);
            finished = true;
        },
        30s);
    BOOST_TEST(finished);
    agent.request("DELETE", "/v1/kv/" + prefix + "?recurse");
}

BOOST_AUTO_TEST_CASE(waiting_semaphores_stay_within_the_budget_and_leave_connections_to_locks)
{
    auto& agent = consul_agent::instance();
    const auto prefix = agent.unique_prefix("semaphore_budget");
    const std::string name = "colock-test-semaphore-budget-" + prefix;
    bool finished = false;
    run_async(
        [&](asio::io_context& io) -> asio::awaitable<void> {
            client other(io.get_executor(), lock_client(name + "-other"));
            auto options = lock_client(name);
            options.max_connections = 12; // 8 reserved for renewals: 3 blocking queries, the rest for writes
            options.max_watches = 3;
            client limited(io.get_executor(), options);
            auto& watches = limited.impl()->watches();

            // Eight semaphores of limit 1, each held by the other client; the limited client waits on all.
            constexpr std::size_t n = 8;
            std::vector<std::unique_ptr<semaphore>> theirs;
            std::vector<std::unique_ptr<semaphore>> mine;
            std::vector<std::shared_ptr<completion>> got;
            auto waiting = named_session(name + "-mine");
            waiting.poll_interval = 300ms;
            for (std::size_t i = 0; i < n; ++i) {
                const auto sem = prefix + "sem" + std::to_string(i);
                theirs.push_back(std::make_unique<semaphore>(other, sem, 1, named_session(name + "-theirs")));
                co_await expect_acquired(*theirs.back());
                mine.push_back(std::make_unique<semaphore>(limited, sem, 1, waiting));
                got.push_back(std::make_shared<completion>());
                mine.back()->acquire(record_into(got.back()));
            }
            co_await require_eventually([&] { return watches.blocking_queries() == 3 && watches.polled_keys() == n - 3; },
                                        5s, "three prefixes are followed by blocking queries, five by polling");

            // A lock of the same client, held elsewhere, is waited for beside them (polled: the budget is
            // taken) and handed over soon after its release: the pool still has connections for it.
            lock holder(other, prefix + "lock");
            co_await expect_acquired(holder);
            lock_options lock_waiting;
            lock_waiting.poll_interval = 300ms;
            lock unrelated(limited, prefix + "lock", lock_waiting);
            auto taken = std::make_shared<completion>();
            unrelated.acquire(record_into(taken));
            co_await require_eventually([&] { return watches.polled_keys() == n - 2; }, 5s, "the lock's key is polled");
            const auto released = clock_type::now();
            co_await expect_released(holder);
            co_await require_eventually([&] { return taken->done; }, 5s, "the waiting lock was handed over");
            const auto took = ms_between(released, taken->at);
            BOOST_TEST_MESSAGE("a lock waiting beside " << n << " semaphores took it " << took
                                                        << " ms after its release (poll every 300 ms)");
            BOOST_TEST(!taken->ec, taken->ec.message());
            BOOST_TEST(took < 1500);
            co_await expect_released(unrelated);
            for (const auto& g : got)
                BOOST_TEST(!g->done);

            // Every slot freed: each waiter, blocking or polled, takes its slot soon.
            const auto freed = clock_type::now();
            for (auto& t : theirs)
                co_await expect_released(*t);
            co_await require_eventually(
                [&] {
                    for (const auto& g : got)
                        if (!g->done)
                            return false;
                    return true;
                },
                5s, "every waiting semaphore took its slot");
            BOOST_TEST_MESSAGE("the last waiter took its slot " << ms_between(freed, clock_type::now())
                                                                << " ms after the first release (poll every 300 ms)");
            for (std::size_t i = 0; i < n; ++i) {
                BOOST_TEST(!got[i]->ec, got[i]->ec.message());
                BOOST_TEST(mine[i]->is_held());
            }
            BOOST_TEST(watches.blocking_queries() <= 3u);
            for (auto& m : mine)
                co_await expect_released(*m);
            finished = true;
        },
        60s);
    BOOST_TEST(finished);
    agent.request("DELETE", "/v1/kv/" + prefix + "?recurse");
}

BOOST_AUTO_TEST_SUITE_END()
