// colock::election against the real agent: one leader at a time among three candidates (each its own client and
// session) with rising fencing tokens, through resign and an operator's destroy of the leader's session; proclaim
// keeps the term and shows in leader() and observe(); observers see every state in order; cancellation of campaign
// and observe; the errors of calls that make no sense in the current state.

#include <colock/consul/client.hpp>
#include <colock/consul/session.hpp>
#include <colock/election.hpp>

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

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <sstream>
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

using state = std::optional<leader_info>;

std::string describe(const state& s)
{
    if (!s)
        return "nobody";
    std::ostringstream os;
    os << "'" << s->value << "' (session " << s->session << ", lock index " << s->lock_index << ")";
    return os.str();
}

// One observer: an election object that calls observe() in a loop and records what it delivers, until stopped.
struct observer {
    observer(client& c, const std::string& key) : e(c, key) {}
    election e;
    std::vector<state> seen;
    error_code failure;  // the first error other than the stop
    bool finished = false;
    asio::cancellation_signal stop;

    void start(asio::any_io_executor ex)
    {
        asio::co_spawn(ex, run(), asio::detached);
    }
    asio::awaitable<void> run()
    {
        for (;;) {
            auto [ec, s] = co_await e.observe(asio::bind_cancellation_slot(stop.slot(), tuple_awaitable));
            if (ec) {
                if (ec != asio::error::operation_aborted)
                    failure = ec;
                break;
            }
            seen.push_back(std::move(s));
        }
        finished = true;
    }
    bool has_seen(const state& s) const { return !seen.empty() && seen.back() == s; }
};

// Waits until every observer's latest delivery is `s`.
asio::awaitable<void> all_see(std::vector<observer*> obs, state s, const char* what)
{
    auto seen = [&] { return std::all_of(obs.begin(), obs.end(), [&](observer* o) { return o->has_seen(s); }); };
    const bool ok = co_await eventually(seen, 10s);
    if (!ok)
        for (auto* o : obs)
            BOOST_TEST_MESSAGE("observer's last: " << (o->seen.empty() ? std::string("none") : describe(o->seen.back()))
                                                   << ", wanted " << describe(s));
    BOOST_TEST_REQUIRE(ok, "the observers did not all see " << what);
}

// The observer delivered the milestones in order, each once, with nothing else in between but short "nobody"
// states (a handoff between two waiting candidates may or may not show one).
void expect_sequence(const observer& o, const std::vector<state>& milestones)
{
    std::size_t next = 0;
    for (std::size_t i = 0; i < o.seen.size(); ++i) {
        const auto& s = o.seen[i];
        if (i > 0)
            BOOST_TEST((s != o.seen[i - 1]), "delivery " << i << " repeats " << describe(s));
        if (next < milestones.size() && s == milestones[next]) {
            ++next;
            continue;
        }
        BOOST_TEST(!s.has_value(), "delivery " << i << " is unexpected: " << describe(s));
    }
    BOOST_TEST(next == milestones.size(), "saw " << next << " of " << milestones.size() << " states");
}

// Who leads according to leader(); requires the read to succeed.
asio::awaitable<state> current_leader(election& e)
{
    auto [ec, s] = co_await e.leader(tuple_awaitable);
    BOOST_TEST_REQUIRE(!ec, "leader(): " << ec.message());
    co_return s;
}

} // namespace

BOOST_AUTO_TEST_SUITE(test_election)

BOOST_AUTO_TEST_CASE(three_candidates_lead_one_at_a_time_through_proclaim_resign_and_death)
{
    const auto prefix = agent().unique_prefix("three");
    const auto key = prefix + "leader";
    bool ran = false;
    run_async(
        [&](asio::io_context& ioc) -> asio::awaitable<void> {
            {
                constexpr int n = 3;
                std::vector<std::unique_ptr<client>> clients;
                std::vector<std::unique_ptr<election>> candidates;
                for (int i = 0; i < n; ++i) {
                    clients.push_back(std::make_unique<client>(ioc.get_executor(), lock_client(prefix, 5s)));
                    candidates.push_back(std::make_unique<election>(*clients.back(), key));
                }
                client watcher(ioc.get_executor(), lock_client(prefix));
                client operator_client(ioc.get_executor(), real_agent_options());
                observer o1(watcher, key), o2(watcher, key);
                std::vector<observer*> obs{&o1, &o2};
                std::vector<state> milestones;

                // Exclusion, checked all along: never two candidates that say they lead.
                int max_leaders = 0;
                bool checking = true;
                bool checker_done = false;
                asio::co_spawn(
                    ioc,
                    [&]() -> asio::awaitable<void> {
                        while (checking) {
                            int leaders = 0;
                            for (auto& c : candidates)
                                leaders += c->is_leader() ? 1 : 0;
                            max_leaders = std::max(max_leaders, leaders);
                            co_await sleep_for(1ms);
                        }
                        checker_done = true;
                    },
                    asio::detached);

                // Nobody campaigns yet: the first observe() says so at once.
                o1.start(ioc.get_executor());
                o2.start(ioc.get_executor());
                co_await all_see(obs, std::nullopt, "nobody leading at first");
                milestones.push_back(std::nullopt);
                BOOST_TEST(!(co_await current_leader(*candidates[0])).has_value());

                // All three campaign; exactly one wins.
                std::vector<std::shared_ptr<completion>> campaigns;
                for (int i = 0; i < n; ++i) {
                    campaigns.push_back(std::make_shared<completion>());
                    candidates[i]->campaign("candidate " + std::to_string(i), record_into(campaigns.back()));
                }
                auto leader_index = [&]() -> int {
                    for (int i = 0; i < n; ++i)
                        if (candidates[i]->is_leader())
                            return i;
                    return -1;
                };
                co_await require_eventually([&] { return leader_index() >= 0; }, 10s, "a candidate leads");
                const int first = leader_index();
                election& l1 = *candidates[first];
                BOOST_TEST(campaigns[first]->done);
                BOOST_TEST(!campaigns[first]->ec, campaigns[first]->ec.message());
                const auto t1 = l1.fencing_token();
                BOOST_TEST(t1 > 0u);
                auto s1 = co_await current_leader(l1);
                BOOST_TEST_REQUIRE(s1.has_value());
                BOOST_TEST(s1->value == "candidate " + std::to_string(first));
                BOOST_TEST(s1->session.str() == read_key(key).session);
                BOOST_TEST(read_key(key).modify_index == t1);
                co_await all_see(obs, s1, "the first leader");
                milestones.push_back(s1);

                // Campaigning again while leading is refused.
                auto [again] = co_await l1.campaign("twice", tuple_awaitable);
                BOOST_TEST((again == errc::already_held), again.message());

                // proclaim: a new value, the same term and token; the lock's monitor does not take it for a loss.
                auto l1_lost = std::make_shared<completion>();
                l1.lost([l1_lost](error_code ec, error_code reason) {
                    l1_lost->ec = ec ? ec : reason;
                    l1_lost->done = true;
                });
                auto [pec] = co_await l1.proclaim("candidate " + std::to_string(first) + " v2", tuple_awaitable);
                BOOST_TEST_REQUIRE(!pec, "proclaim: " << pec.message());
                BOOST_TEST(l1.is_leader());
                BOOST_TEST(l1.fencing_token() == t1);
                auto s1b = co_await current_leader(l1);
                BOOST_TEST_REQUIRE(s1b.has_value());
                BOOST_TEST(s1b->value == "candidate " + std::to_string(first) + " v2");
                BOOST_TEST(s1b->session == s1->session);
                BOOST_TEST(s1b->lock_index == s1->lock_index);
                const auto k = read_key(key);
                BOOST_TEST(k.flags == colock::lock_flags);
                BOOST_TEST(k.modify_index > t1); // the key was written, the token stays the term's
                co_await all_see(obs, s1b, "the proclaimed value");
                milestones.push_back(s1b);
                co_await sleep_for(300ms); // room for the monitor to wake up on the write
                BOOST_TEST(!l1_lost->done, "lost() completed after a proclaim: " << l1_lost->ec.message());
                BOOST_TEST(l1.is_leader());

                // A candidate that does not lead cannot proclaim, and nothing is written.
                const int waiting = (first + 1) % n;
                auto [npec] = co_await candidates[waiting]->proclaim("usurper", tuple_awaitable);
                BOOST_TEST((npec == errc::not_held), npec.message());
                BOOST_TEST(raw_value(key).value_or("") == s1b->value);

                // The leader resigns: another candidate leads, with a larger token.
                auto [rec] = co_await l1.resign(tuple_awaitable);
                BOOST_TEST_REQUIRE(!rec, "resign: " << rec.message());
                BOOST_TEST(!l1.is_leader());
                co_await require_eventually([&] { return leader_index() >= 0; }, 10s, "a second candidate leads");
                const int second = leader_index();
                BOOST_TEST(second != first);
                election& l2 = *candidates[second];
                const auto t2 = l2.fencing_token();
                BOOST_TEST(t2 > t1);
                BOOST_TEST(l1_lost->done);
                BOOST_TEST((l1_lost->ec == errc::not_held), "after resign, lost() says " << l1_lost->ec.message());
                auto s2 = co_await current_leader(l2);
                BOOST_TEST_REQUIRE(s2.has_value());
                BOOST_TEST(s2->value == "candidate " + std::to_string(second));
                co_await all_see(obs, s2, "the second leader");
                milestones.push_back(s2);
                auto [resigned_twice] = co_await l1.resign(tuple_awaitable);
                BOOST_TEST((resigned_twice == errc::not_held), resigned_twice.message());

                // The second leader dies: an operator destroys its session. The third candidate leads, the second's
                // lost() says why.
                const auto dead_session = s2->session;
                auto [dec, destroyed] = co_await operator_client.session_destroy(dead_session, {}, tuple_awaitable);
                BOOST_TEST_REQUIRE(!dec, "destroy: " << dec.message());
                BOOST_TEST(destroyed);
                auto [lec, reason] = co_await l2.lost(tuple_awaitable);
                BOOST_TEST(!lec);
                BOOST_TEST((reason == colock::condition::ownership_lost), "lost() says " << reason.message());
                BOOST_TEST(!l2.is_leader());
                co_await require_eventually([&] { return leader_index() >= 0; }, 10s, "a third candidate leads");
                const int third = leader_index();
                BOOST_TEST(third != first);
                BOOST_TEST(third != second);
                election& l3 = *candidates[third];
                const auto t3 = l3.fencing_token();
                BOOST_TEST(t3 > t2);
                auto s3 = co_await current_leader(l3);
                BOOST_TEST_REQUIRE(s3.has_value());
                BOOST_TEST(s3->session != dead_session);
                co_await all_see(obs, s3, "the third leader");
                milestones.push_back(s3);

                // The last leader resigns and nobody else campaigns: no leader.
                auto [rec3] = co_await l3.resign(tuple_awaitable);
                BOOST_TEST_REQUIRE(!rec3, "resign: " << rec3.message());
                co_await all_see(obs, std::nullopt, "nobody leading at the end");
                milestones.push_back(std::nullopt);
                BOOST_TEST(!(co_await current_leader(l3)).has_value());

                // The first leader wins again with the same session: a new term, seen as a new state.
                auto [again_ec] = co_await l1.campaign("candidate " + std::to_string(first) + " again", tuple_awaitable);
                BOOST_TEST_REQUIRE(!again_ec, again_ec.message());
                BOOST_TEST(l1.fencing_token() > t3);
                auto s4 = co_await current_leader(l1);
                BOOST_TEST_REQUIRE(s4.has_value());
                BOOST_TEST(s4->session == s1->session);
                BOOST_TEST(s4->lock_index > s1->lock_index);
                co_await all_see(obs, s4, "the first leader's second term");
                milestones.push_back(s4);
                auto [rec4] = co_await l1.resign(tuple_awaitable);
                BOOST_TEST(!rec4, rec4.message());
                co_await all_see(obs, std::nullopt, "nobody leading after the second term");
                milestones.push_back(std::nullopt);

                for (auto* o : obs) {
                    o->stop.emit(asio::cancellation_type::terminal);
                    co_await require_eventually([&] { return o->finished; }, 2s, "the observer stops");
                    BOOST_TEST(!o->failure, o->failure.message());
                    expect_sequence(*o, milestones);
                }
                checking = false;
                co_await require_eventually([&] { return checker_done; }, 1s, "the exclusion checker stops");
                BOOST_TEST(max_leaders == 1);
                for (auto& c : campaigns)
                    BOOST_TEST(c->done);
                candidates.clear();
                co_await operator_client.kv_delete(prefix, kv_delete_options::recursive(), {}, tuple_awaitable);
            }
            co_await expect_no_sessions_named(prefix);
            ran = true;
        },
        60s);
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(a_cancelled_campaign_never_leads_and_a_resigned_value_is_the_proclaimed_one)
{
    const auto prefix = agent().unique_prefix("cancel_campaign");
    const auto key = prefix + "leader";
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        {
            client ca(ioc.get_executor(), lock_client(prefix));
            client cb(ioc.get_executor(), lock_client(prefix));
            election a(ca, key), b(cb, key);
            auto [aec] = co_await a.campaign("a", tuple_awaitable);
            BOOST_TEST_REQUIRE(!aec, aec.message());

            // Each kind of cancellation while b waits: b completes with operation_aborted and does not lead.
            for (auto kind : {asio::cancellation_type::terminal, asio::cancellation_type::partial,
                              asio::cancellation_type::total}) {
                asio::cancellation_signal signal;
                auto done = std::make_shared<completion>();
                b.campaign("b", asio::bind_cancellation_slot(signal.slot(), record_into(done)));
                co_await sleep_for(100ms);
                BOOST_TEST(!done->done);
                signal.emit(kind);
                co_await require_eventually([&] { return done->done; }, 2s, "the cancelled campaign completes");
                BOOST_TEST((done->ec == asio::error::operation_aborted), done->ec.message());
                BOOST_TEST(!b.is_leader());
            }
            // A second campaign while one is pending is refused.
            asio::cancellation_signal signal;
            auto pending = std::make_shared<completion>();
            b.campaign("b", asio::bind_cancellation_slot(signal.slot(), record_into(pending)));
            auto [busy] = co_await b.campaign("b2", tuple_awaitable);
            BOOST_TEST((busy == errc::operation_in_progress), busy.message());
            signal.emit(asio::cancellation_type::terminal);
            co_await require_eventually([&] { return pending->done; }, 2s, "the cancelled campaign completes");

            // a proclaims and resigns: the release writes the proclaimed value; b never takes the key.
            auto [pec] = co_await a.proclaim("a v2", tuple_awaitable);
            BOOST_TEST_REQUIRE(!pec, pec.message());
            auto [rec] = co_await a.resign(tuple_awaitable);
            BOOST_TEST_REQUIRE(!rec, rec.message());
            BOOST_TEST(raw_value(key).value_or("<absent>") == "a v2");
            auto [lec, reading] = co_await b.leader(tuple_awaitable);
            BOOST_TEST(!lec);
            BOOST_TEST(!reading.has_value(), "leads: " << describe(reading));
            co_await sleep_for(300ms);
            BOOST_TEST(read_key(key).session.empty(), "a cancelled campaign took the key");
            BOOST_TEST(!b.is_leader());

            // Errors of calls that do not fit the state.
            auto [nr] = co_await b.resign(tuple_awaitable);
            BOOST_TEST((nr == errc::not_held), nr.message());
            auto [np] = co_await b.proclaim("x", tuple_awaitable);
            BOOST_TEST((np == errc::not_held), np.message());
            auto [why_ec, why] = co_await b.lost(tuple_awaitable);
            BOOST_TEST(!why_ec);
            BOOST_TEST((why == errc::not_held), why.message());

            // A key that is not a lock is no election.
            put_key(prefix + "data", "plain", 0);
            election other(ca, prefix + "data");
            auto [cec, cs] = co_await other.leader(tuple_awaitable);
            BOOST_TEST((cec == errc::conflict), cec.message());
            auto [oec, os] = co_await other.observe(tuple_awaitable);
            BOOST_TEST((oec == errc::conflict), oec.message());
            (void)cs;
            (void)os;
            co_await ca.kv_delete(prefix, kv_delete_options::recursive(), {}, tuple_awaitable);
        }
        co_await expect_no_sessions_named(prefix);
        ran = true;
    });
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(a_cancelled_observe_leaves_the_watch_usable_from_the_last_state)
{
    const auto prefix = agent().unique_prefix("cancel_observe");
    const auto key = prefix + "leader";
    bool ran = false;
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        {
            client c(ioc.get_executor(), lock_client(prefix));
            election watcher(c, key), candidate(c, key);
            auto [fec, first] = co_await watcher.observe(tuple_awaitable);
            BOOST_TEST_REQUIRE(!fec, fec.message());
            BOOST_TEST(!first.has_value());

            // Nothing changes: the next observe() waits; each kind of cancellation ends it at once.
            for (auto kind : {asio::cancellation_type::terminal, asio::cancellation_type::partial,
                              asio::cancellation_type::total}) {
                asio::cancellation_signal signal;
                auto done = std::make_shared<completion>();
                watcher.observe(asio::bind_cancellation_slot(signal.slot(), [done](error_code ec, state) {
                    done->ec = ec;
                    done->done = true;
                }));
                co_await sleep_for(100ms);
                BOOST_TEST(!done->done);
                // One observe() at a time.
                auto [busy, nothing] = co_await watcher.observe(tuple_awaitable);
                BOOST_TEST((busy == errc::operation_in_progress), busy.message());
                (void)nothing;
                const auto t0 = clock_type::now();
                signal.emit(kind);
                co_await require_eventually([&] { return done->done; }, 1s, "the cancelled observe completes");
                BOOST_TEST(ms_since(t0) < 200);
                BOOST_TEST((done->ec == asio::error::operation_aborted), done->ec.message());
            }

            // The watch goes on from "nobody": the next state is the new leader, then nobody again.
            auto [cec] = co_await candidate.campaign("me", tuple_awaitable);
            BOOST_TEST_REQUIRE(!cec, cec.message());
            auto [nec, next] = co_await watcher.observe(tuple_awaitable);
            BOOST_TEST_REQUIRE(!nec, nec.message());
            BOOST_TEST_REQUIRE(next.has_value());
            BOOST_TEST(next->value == "me");
            BOOST_TEST((next->session == *c.shared_session().id()));
            auto [rec] = co_await candidate.resign(tuple_awaitable);
            BOOST_TEST_REQUIRE(!rec, rec.message());
            auto [gec, gone] = co_await watcher.observe(tuple_awaitable);
            BOOST_TEST(!gec, gec.message());
            BOOST_TEST(!gone.has_value(), describe(gone));

            // Destroying the election cancels a pending observe().
            auto orphan = std::make_unique<election>(c, key);
            auto [iec, initial] = co_await orphan->observe(tuple_awaitable);
            BOOST_TEST(!iec);
            (void)initial;
            auto done = std::make_shared<completion>();
            orphan->observe([done](error_code ec, state) {
                done->ec = ec;
                done->done = true;
            });
            co_await sleep_for(50ms);
            orphan.reset();
            co_await require_eventually([&] { return done->done; }, 1s, "the orphaned observe completes");
            BOOST_TEST((done->ec == asio::error::operation_aborted), done->ec.message());
            co_await c.kv_delete(prefix, kv_delete_options::recursive(), {}, tuple_awaitable);
        }
        co_await expect_no_sessions_named(prefix);
        ran = true;
    });
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_SUITE_END()
