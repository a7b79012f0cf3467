// colock::semaphore against the real agent (CONSUL.md section 3): Go's layout (contender keys, the `.lock` record and
// its flags), the limit across clients, rising fencing tokens, pruning of dead holders, limit and flag conflicts,
// a sibling prefix that never counts, cancellation and failures that leave nothing behind, and loss.

#include <colock/consul/client.hpp>
#include <colock/consul/session.hpp>
#include <colock/semaphore.hpp>

#include "async_test.hpp"
#include "consul_agent.hpp"
#include "fault_helpers.hpp"
#include "kv_probe.hpp"
#include "lock_helpers.hpp"
#include "test_options.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/json/parse.hpp>

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

} // namespace

BOOST_AUTO_TEST_SUITE(test_semaphore)

BOOST_AUTO_TEST_CASE(acquire_writes_gos_layout_and_release_removes_it)
{
    const auto name = agent().unique_prefix("sem_layout");
    const auto prefix = name + "sem";
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        {
            client c(ioc.get_executor(), lock_client(name));
            auto opts = named_session(name);
            opts.value = "worker 1";
            semaphore s(c, prefix + "/", 2, opts); // a trailing '/' is ignored, as by Go
            BOOST_TEST(s.prefix() == prefix);
            BOOST_TEST(s.limit() == 2u);
            BOOST_TEST(!s.is_held());
            auto [not_held] = co_await s.release(tuple_awaitable);
            BOOST_TEST(not_held == errc::not_held);

            co_await expect_acquired(s);
            const auto sid = sid_of(s);
            // The contender key: named after our session, held by it, Go's semaphore flags, our value.
            auto mine = read_key(prefix + "/" + sid);
            BOOST_TEST_REQUIRE(mine.exists);
            BOOST_TEST(mine.session == sid);
            BOOST_TEST(mine.flags == semaphore_flags);
            BOOST_TEST(mine.flags == 16210313421097356768ull);
            BOOST_TEST(raw_value(prefix + "/" + sid).value_or("") == "worker 1");
            // The record: never locked, Go's flags, {"Limit":2,"Holders":{sid:true}}; its write is our token.
            auto rec = read_key(prefix + "/.lock");
            BOOST_TEST_REQUIRE(rec.exists);
            BOOST_TEST(rec.session.empty());
            BOOST_TEST(rec.flags == semaphore_flags);
            BOOST_TEST(rec.modify_index == s.fencing_token());
            BOOST_TEST(read_semaphore_record(prefix).limit == 2);
            BOOST_TEST((read_semaphore_record(prefix).holders == std::set<std::string>{sid}));
            BOOST_TEST((s.deadline() > clock_type::now()));

            auto [again] = co_await s.acquire(tuple_awaitable);
            BOOST_TEST(again == errc::already_held);

            co_await expect_released(s);
            BOOST_TEST(read_semaphore_record(prefix).holders.empty());
            BOOST_TEST(!read_key(prefix + "/" + sid).exists);
            BOOST_TEST(read_key(prefix + "/.lock").exists); // the record stays (as Go leaves it)
            ran = true;
        }
        co_await expect_no_sessions_named(name); // the semaphore's own session ends with it
    });
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(never_more_holders_than_the_limit_and_a_waiter_gets_a_freed_slot)
{
    const auto name = agent().unique_prefix("sem_limit");
    const auto prefix = name + "sem";
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        client c1(ioc.get_executor(), lock_client(name));
        client c2(ioc.get_executor(), lock_client(name));
        semaphore a(c1, prefix, 2, named_session(name));
        semaphore b(c2, prefix, 2, named_session(name));
        semaphore w(c2, prefix, 2, named_session(name)); // same client as b, its own session
        co_await expect_acquired(a);
        co_await expect_acquired(b);
        BOOST_TEST(b.fencing_token() > a.fencing_token());
        co_await expect_refused(w);
        // A refused try leaves no contender key: the two holders' and the record only.
        BOOST_TEST(boost::json::parse(agent().request("GET", "/v1/kv/" + prefix + "/?keys").body).as_array().size() == 3u);

        auto waited = std::make_shared<completion>();
        w.acquire(record_into(waited));
        co_await sleep_for(300ms); // time-based: the waiter must still be waiting while both slots are held
        BOOST_TEST(!waited->done);
        BOOST_TEST(read_semaphore_record(prefix).holders.size() == 2u);

        const auto released_at = clock_type::now();
        co_await expect_released(a);
        co_await require_eventually([&] { return waited->done; }, 5s, "the waiter's acquire");
        BOOST_TEST(!waited->ec, waited->ec.message());
        BOOST_TEST(w.is_held());
        BOOST_TEST(w.fencing_token() > b.fencing_token());
        BOOST_TEST_MESSAGE("freed slot taken " << ms_between(released_at, waited->at) << " ms after the release");
        const auto h = read_semaphore_record(prefix).holders;
        BOOST_TEST(h.size() == 2u);
        BOOST_TEST(h.count(sid_of(b)) == 1u);
        BOOST_TEST(h.count(sid_of(w)) == 1u);
        co_await expect_released(b);
        co_await expect_released(w);
        ran = true;
    });
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(with_limit_two_a_holder_keeps_its_slot_beside_newer_larger_tokens)
{
    // The token's contract for limit > 1: unique and rising with acquisition order, but no fence by order. A
    // resource that refused tokens smaller than the largest it saw would refuse `a`, which still holds.
    const auto name = agent().unique_prefix("sem_token");
    const auto prefix = name + "sem";
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        client c(ioc.get_executor(), lock_client(name));
        semaphore a(c, prefix, 2, named_session(name));
        semaphore b(c, prefix, 2, named_session(name));
        co_await expect_acquired(a);
        std::uint64_t newest = a.fencing_token();
        for (int i = 0; i < 3; ++i) { // three acquisitions after a's, each with a larger token
            co_await expect_acquired(b);
            BOOST_TEST(b.fencing_token() > newest);
            newest = b.fencing_token();
            co_await expect_released(b);
        }
        BOOST_TEST(a.is_held());
        BOOST_TEST(a.fencing_token() < newest);
        BOOST_TEST(read_semaphore_record(prefix).holders.count(sid_of(a)) == 1u); // still a holder for Consul
        co_await expect_released(a);
        ran = true;
    });
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(many_contenders_never_exceed_the_limit_and_tokens_are_unique)
{
    const auto name = agent().unique_prefix("sem_many");
    const auto prefix = name + "sem";
    constexpr int contenders = 6;
    constexpr int rounds = 5;
    int inside = 0, most = 0, done = 0;
    std::set<std::uint64_t> tokens;
    run_async(
        [&](asio::io_context& ioc) -> asio::awaitable<void> {
            client c1(ioc.get_executor(), lock_client(name));
            client c2(ioc.get_executor(), lock_client(name));
            std::vector<std::unique_ptr<semaphore>> sems;
            for (int i = 0; i < contenders; ++i)
                sems.push_back(std::make_unique<semaphore>(i % 2 ? c1 : c2, prefix, 2, named_session(name)));
            auto worker = [&](semaphore& s) -> asio::awaitable<void> {
                for (int r = 0; r < rounds; ++r) {
                    co_await expect_acquired(s);
                    tokens.insert(s.fencing_token());
                    most = std::max(most, ++inside);
                    BOOST_TEST(read_semaphore_record(prefix).holders.size() <= 2u);
                    co_await sleep_for(20ms);
                    --inside;
                    co_await expect_released(s);
                }
                ++done;
            };
            for (auto& s : sems)
                asio::co_spawn(ioc, worker(*s), asio::detached);
            co_await require_eventually([&] { return done == contenders; }, 50s, "all rounds");
        },
        60s);
    BOOST_TEST(done == contenders);
    BOOST_TEST(most <= 2); // (that both slots get used is shown deterministically by the test above)
    BOOST_TEST(tokens.size() == std::size_t(contenders * rounds)); // every acquisition had its own token
}

BOOST_AUTO_TEST_CASE(a_dead_holder_is_pruned_and_a_sibling_prefix_never_counts)
{
    const auto name = agent().unique_prefix("sem_prune");
    const auto prefix = name + "sem";
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        // A holder whose session is gone (a Go contender that died): in the record, no key under the prefix.
        const std::string dead = "0badc0de-0000-0000-0000-000000000001";
        put_key(prefix + "/.lock", R"({"Limit":1,"Holders":{")" + dead + R"(":true}})", semaphore_flags);
        // A live session holding keys under a *sibling* prefix (`<prefix>2/`) and listed in its record.
        const auto sibling_session = create_raw_session(name + "sibling");
        BOOST_TEST_REQUIRE(raw_lock_write(prefix + "2/" + sibling_session, "acquire", sibling_session, semaphore_flags));
        put_key(prefix + "2/.lock", R"({"Limit":1,"Holders":{")" + sibling_session + R"(":true}})", semaphore_flags);

        client c(ioc.get_executor(), lock_client(name));
        semaphore s(c, prefix, 1, named_session(name));
        co_await expect_taken(s);
        BOOST_TEST((read_semaphore_record(prefix).holders == std::set<std::string>{sid_of(s)})); // the dead one is gone
        BOOST_TEST((read_semaphore_record(prefix + "2").holders == std::set<std::string>{sibling_session})); // untouched
        co_await expect_released(s);
        destroy_session(sibling_session);
        delete_key(prefix + "2/.lock");
        ran = true;
    });
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(limit_and_flag_conflicts_fail_clearly_and_leave_nothing)
{
    const auto name = agent().unique_prefix("sem_conflict");
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        client c(ioc.get_executor(), lock_client(name));
        const auto other_limit = name + "limit";
        put_key(other_limit + "/.lock", R"({"Limit":3,"Holders":{}})", semaphore_flags);
        {
            semaphore s(c, other_limit, 2, named_session(name));
            auto [ec] = co_await s.acquire(tuple_awaitable);
            BOOST_TEST(ec == errc::limit_conflict, ec.message());
            BOOST_TEST(!s.is_held());
        }
        const auto a_lock = name + "lock"; // `consul lock` (-n 1) uses `<prefix>/.lock` with the lock flags
        put_key(a_lock + "/.lock", "", lock_flags);
        {
            semaphore s(c, a_lock, 2, named_session(name));
            auto [ec] = co_await s.acquire(tuple_awaitable);
            BOOST_TEST(ec == errc::conflict, ec.message());
        }
        {
            semaphore zero(c, name + "zero", 0, named_session(name));
            auto [ec] = co_await zero.acquire(tuple_awaitable);
            BOOST_TEST(ec == errc::invalid_argument);
            semaphore unnamed(c, "/", 1, named_session(name));
            auto [ec2] = co_await unnamed.acquire(tuple_awaitable);
            BOOST_TEST(ec2 == errc::invalid_argument);
        }
        // Nothing left: only the two records we wrote ourselves.
        auto listed = agent().request("GET", "/v1/kv/" + name + "?keys");
        BOOST_TEST(listed.status == 200u);
        const auto keys = boost::json::parse(listed.body).as_array();
        BOOST_TEST(keys.size() == 2u, listed.body);
        ran = true;
    });
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(a_cancelled_waiter_leaves_nothing_behind)
{
    const auto name = agent().unique_prefix("sem_cancel");
    const auto prefix = name + "sem";
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        client c(ioc.get_executor(), lock_client(name));
        semaphore holder(c, prefix, 1, named_session(name));
        semaphore waiter(c, prefix, 1, named_session(name));
        co_await expect_acquired(holder);
        asio::cancellation_signal stop;
        auto waited = std::make_shared<completion>();
        waiter.acquire(asio::bind_cancellation_slot(stop.slot(), record_into(waited)));
        // The waiter has written its contender key and waits.
        co_await require_eventually([&] { return agent().request("GET", "/v1/kv/" + prefix + "/?keys").body.find(',') != std::string::npos; },
                                    5s, "the waiter's contender key");
        const auto cancelled_at = clock_type::now();
        stop.emit(asio::cancellation_type::terminal);
        co_await require_eventually([&] { return waited->done; }, 3s, "the cancelled acquire");
        BOOST_TEST(waited->ec == asio::error::operation_aborted, waited->ec.message());
        BOOST_TEST(ms_between(cancelled_at, waited->at) < 1000);
        BOOST_TEST(!waiter.is_held());
        // Only the holder's key and the record remain.
        auto keys = boost::json::parse(agent().request("GET", "/v1/kv/" + prefix + "/?keys").body).as_array();
        BOOST_TEST(keys.size() == 2u);
        BOOST_TEST((read_semaphore_record(prefix).holders == std::set<std::string>{sid_of(holder)}));
        co_await expect_released(holder);
        ran = true;
    });
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(loss_is_reported_when_removed_from_the_record_or_the_session_is_destroyed)
{
    const auto name = agent().unique_prefix("sem_loss");
    const auto prefix = name + "sem";
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        client c(ioc.get_executor(), lock_client(name));
        semaphore s(c, prefix, 2, named_session(name));

        // 1. An operator rewrites the record without us.
        co_await expect_acquired(s);
        const auto first_sid = sid_of(s);
        co_await sleep_for(100ms); // time-based: let the hold's watch start (it waits 25 ms)
        auto t0 = clock_type::now();
        put_key(prefix + "/.lock", R"({"Limit":2,"Holders":{}})", semaphore_flags);
        auto reason = co_await lost_reason(s);
        BOOST_TEST(reason == errc::lock_lost, reason.message());
        BOOST_TEST(!s.is_held());
        BOOST_TEST_MESSAGE("removal from the record reported in " << ms_since(t0) << " ms");
        // The lost slot's leftovers are cleared and its own session replaced.
        co_await require_eventually([&] { return !read_key(prefix + "/" + first_sid).exists; }, 5s,
                                    "the lost contender key's removal");

        // 2. An operator destroys the session (delete behaviour: the contender key goes with it).
        co_await expect_acquired(s);
        const auto second_sid = sid_of(s);
        BOOST_TEST(second_sid != first_sid);
        co_await sleep_for(100ms);
        t0 = clock_type::now();
        destroy_session(second_sid);
        reason = co_await lost_reason(s);
        BOOST_TEST((reason == errc::lock_lost || reason == errc::session_invalidated), reason.message());
        BOOST_TEST(ms_since(t0) < 3000);
        co_await require_eventually([&] { return !read_semaphore_record(prefix).holders.count(second_sid); }, 5s, "the record's cleanup");

        // 3. It can acquire again afterwards.
        co_await expect_acquired(s);
        co_await expect_released(s);
        ran = true;
    });
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(a_semaphore_on_a_caller_session_shares_it_with_nothing_else)
{
    const auto name = agent().unique_prefix("sem_given");
    const auto prefix = name + "sem";
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        client c(ioc.get_executor(), lock_client(name));
        session_options so;
        so.name = name + "mine";
        so.behavior = session_behavior::delete_keys;
        so.lock_delay = 0ms;
        so.node_checks.emplace();
        session mine(c, so);
        semaphore_options opts;
        opts.session = &mine;
        {
            semaphore s(c, prefix, 1, opts);
            co_await expect_acquired(s);
            BOOST_TEST((s.session_id() == mine.id()));
            co_await expect_released(s);
        }
        BOOST_TEST(mine.is_live()); // not ours to end
        ran = true;
    });
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_SUITE_END()
