// The client's watch service, used directly against the real agent: keys and prefixes within the
// budget are followed by blocking queries, those beyond it are read together in one /v1/txn per
// round (missing keys included: `get-or-empty` never rolls the batch back), and a polled or blocking
// prefix delivers its keys as they change.

#include <colock/consul/client.hpp>

#include "async_test.hpp"
#include "consul/client_impl.hpp"
#include "consul/watch_service.hpp"
#include "consul_agent.hpp"
#include "kv_probe.hpp"
#include "lock_helpers.hpp"

#include <memory>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace colock;
using namespace colock::consul;
using namespace colock::test;
using namespace std::chrono_literals;
using consul::detail::key_view;
using consul::detail::watch_interest;
using consul::detail::watch_service;

BOOST_TEST_GLOBAL_FIXTURE(consul_agent_fixture);

namespace {

// The views one subscription received, newest last, and how many poll transactions the service had
// sent when each arrived.
struct deliveries {
    const watch_service* service = nullptr;
    std::vector<key_view> views;
    std::vector<std::uint64_t> polls;
    watch_service::callback record()
    {
        return [this](const key_view& v) {
            views.push_back(v);
            polls.push_back(service ? service->poll_transactions() : 0);
        };
    }
    const key_view* last() const { return views.empty() ? nullptr : &views.back(); }
};

std::vector<std::string> keys_of(const key_view& v)
{
    std::vector<std::string> out;
    for (const auto& e : v.entries)
        out.push_back(e.key);
    return out;
}

client_options budget_of_one()
{
    auto o = real_agent_options();
    o.max_watches = 1;
    return o;
}

} // namespace

BOOST_AUTO_TEST_SUITE(test_watch_service)

BOOST_AUTO_TEST_CASE(missing_keys_beyond_the_budget_cost_one_transaction_per_round)
{
    auto& agent = consul_agent::instance();
    const auto prefix = agent.unique_prefix("watch_missing");
    run_async([&](asio::io_context& io) -> asio::awaitable<void> {
        client c(io.get_executor(), budget_of_one());
        auto& watches = c.impl()->watches();
        watch_interest interest;
        interest.poll_interval = 200ms;
        deliveries first;
        auto blocking = watches.subscribe(prefix + "watched", {}, interest, first.record());
        co_await require_eventually([&] { return first.last() != nullptr; }, 5s, "the blocking query answered");
        BOOST_TEST(watches.blocking_queries() == 1u);

        // Ten keys that do not exist, beyond the budget: one transaction reads them all.
        constexpr int k = 10;
        std::vector<deliveries> seen(k);
        std::vector<std::unique_ptr<watch_service::subscription>> polled;
        const auto before = watches.poll_transactions();
        for (int i = 0; i < k; ++i) {
            seen[i].service = &watches;
            polled.push_back(watches.subscribe(prefix + "missing-" + std::to_string(i), {}, interest, seen[i].record()));
        }
        BOOST_TEST(watches.polled_keys() == std::size_t(k));
        co_await require_eventually(
            [&] {
                for (const auto& s : seen)
                    if (!s.last())
                        return false;
                return true;
            },
            5s, "every missing key answered");
        for (const auto& s : seen) {
            BOOST_TEST(s.polls.front() - before == 1u); // all answered by the first transaction
            BOOST_TEST(s.last()->known);
            BOOST_TEST(!s.last()->error, s.last()->error.message());
            BOOST_TEST(!s.last()->entry.has_value());
        }
        BOOST_TEST(watches.blocking_queries() == 1u); // never more than the budget

        // One of them appears: the next round (one transaction) delivers it; the others stay quiet.
        put_key(prefix + "missing-3", "here", 0);
        co_await require_eventually([&] { return seen[3].last()->entry.has_value(); }, 3s,
                                    "the created key was delivered");
        BOOST_TEST(seen[3].last()->entry->value == "here");
        for (int i = 0; i < k; ++i)
            if (i != 3)
                BOOST_TEST(seen[i].views.size() == 1u);
    });
    agent.request("DELETE", "/v1/kv/" + prefix + "?recurse");
}

BOOST_AUTO_TEST_CASE(a_prefix_is_followed_by_a_blocking_query_within_the_budget_and_by_polling_beyond_it)
{
    auto& agent = consul_agent::instance();
    const auto prefix = agent.unique_prefix("watch_prefix");
    run_async([&](asio::io_context& io) -> asio::awaitable<void> {
        client c(io.get_executor(), budget_of_one());
        auto& watches = c.impl()->watches();
        watch_interest interest;
        interest.poll_interval = 200ms;
        put_key(prefix + "blocking/a", "1", 0);
        put_key(prefix + "polled/a", "1", 0);
        put_key(prefix + "polled-sibling", "not under polled/", 0);

        deliveries b;
        auto blocking = watches.subscribe_prefix(prefix + "blocking/", {}, interest, b.record());
        deliveries p;
        auto polled = watches.subscribe_prefix(prefix + "polled/", {}, interest, p.record());
        // A key of the polled prefix, followed on its own too: read in the same transaction.
        deliveries k;
        auto key = watches.subscribe(prefix + "polled/a", {}, interest, k.record());
        BOOST_TEST(watches.blocking_queries() == 1u);
        BOOST_TEST(watches.polled_keys() == 2u);
        co_await require_eventually([&] { return b.last() && p.last() && k.last(); }, 5s, "all three answered");
        BOOST_TEST(keys_of(*b.last()) == std::vector<std::string>{prefix + "blocking/a"});
        BOOST_TEST(keys_of(*p.last()) == std::vector<std::string>{prefix + "polled/a"}); // once, no sibling
        BOOST_TEST(!b.last()->entry.has_value());
        BOOST_TEST(k.last()->entry.has_value());

        // Changes under each prefix are delivered: a key created, a key deleted.
        put_key(prefix + "blocking/b", "2", 0);
        put_key(prefix + "polled/b", "2", 0);
        co_await require_eventually([&] { return b.last()->entries.size() == 2 && p.last()->entries.size() == 2; },
                                    3s, "the created keys were delivered");
        BOOST_TEST(keys_of(*p.last()) == (std::vector<std::string>{prefix + "polled/a", prefix + "polled/b"}));
        delete_key(prefix + "blocking/a");
        delete_key(prefix + "polled/a");
        co_await require_eventually([&] { return b.last()->entries.size() == 1 && p.last()->entries.size() == 1; },
                                    3s, "the deleted keys were delivered");
        BOOST_TEST(keys_of(*b.last()) == std::vector<std::string>{prefix + "blocking/b"});
        BOOST_TEST(keys_of(*p.last()) == std::vector<std::string>{prefix + "polled/b"});
        co_await require_eventually([&] { return !k.last()->entry.has_value(); }, 3s, "the key's deletion too");
        BOOST_TEST(!k.last()->error, k.last()->error.message());

        // The blocking prefix's last user goes: its slot passes to a polled one.
        blocking.reset();
        co_await require_eventually([&] { return watches.polled_keys() == 1u; }, 15s, "a polled entry was promoted");
        BOOST_TEST(watches.blocking_queries() == 1u);
    });
    agent.request("DELETE", "/v1/kv/" + prefix + "?recurse");
}

BOOST_AUTO_TEST_SUITE_END()
