// Tier A: src/recipes/election_state.hpp (who leads according to a key; what a proclaim's answer means).
#include "recipes/election_state.hpp"

#include <colock/lock_options.hpp>

#include <boost/test/unit_test.hpp>

namespace {

using namespace colock;
using colock::consul::kv_entry;
using colock::consul::session_id;
using colock::consul::txn_result;
using colock::consul::txn_verb;

kv_entry lock_key(const char* session, std::uint64_t lock_index, const char* value = "me")
{
    kv_entry e;
    e.key = "svc/leader";
    e.value = value;
    e.flags = lock_flags;
    e.lock_index = lock_index;
    e.modify_index = 100;
    if (session)
        e.session = session_id(session);
    return e;
}

txn_result committed_with(kv_entry after)
{
    txn_result r;
    r.committed = true;
    r.results = {after, after};
    return r;
}

} // namespace

BOOST_AUTO_TEST_SUITE(test_election_state)

BOOST_AUTO_TEST_CASE(a_held_lock_key_names_its_session_value_and_term)
{
    const auto r = detail::leader_of(lock_key("s1", 3, "10.0.0.7:80"));
    BOOST_TEST(!r.ec);
    BOOST_TEST_REQUIRE(r.leader.has_value());
    BOOST_TEST(r.leader->session == session_id("s1"));
    BOOST_TEST(r.leader->value == "10.0.0.7:80");
    BOOST_TEST(r.leader->lock_index == 3u);
}

BOOST_AUTO_TEST_CASE(no_key_or_a_released_key_means_nobody_leads)
{
    BOOST_TEST(!detail::leader_of(std::nullopt).leader.has_value());
    BOOST_TEST(!detail::leader_of(std::nullopt).ec);
    const auto released = detail::leader_of(lock_key(nullptr, 3));
    BOOST_TEST(!released.leader.has_value());
    BOOST_TEST(!released.ec);
}

BOOST_AUTO_TEST_CASE(a_key_with_other_flags_is_a_conflict)
{
    auto k = lock_key("s1", 1);
    k.flags = 0;
    const auto r = detail::leader_of(k);
    BOOST_TEST((r.ec == errc::conflict));
    BOOST_TEST(!r.leader.has_value());
}

BOOST_AUTO_TEST_CASE(proclaim_checks_our_session_before_relocking_with_lock_flags)
{
    const auto ops = detail::proclaim_ops("svc/leader", session_id("s1"), "new");
    BOOST_TEST_REQUIRE(ops.size() == 2u);
    BOOST_TEST((ops[0].verb == txn_verb::check_session));
    BOOST_TEST((ops[0].session == session_id("s1")));
    BOOST_TEST((ops[1].verb == txn_verb::lock));
    BOOST_TEST((ops[1].session == session_id("s1")));
    BOOST_TEST(ops[1].value == "new");
    BOOST_TEST(ops[1].flags == lock_flags);
}

BOOST_AUTO_TEST_CASE(proclaim_succeeds_only_within_the_same_term)
{
    BOOST_TEST(!detail::proclaim_outcome(committed_with(lock_key("s1", 4)), session_id("s1"), 4));
    // Committed, yet in another term of our session (another object re-acquired it): not our term.
    BOOST_TEST((detail::proclaim_outcome(committed_with(lock_key("s1", 5)), session_id("s1"), 4) == errc::lock_lost));
    BOOST_TEST((detail::proclaim_outcome(committed_with(lock_key("s2", 4)), session_id("s1"), 4) == errc::lock_lost));
    txn_result rolled_back;
    BOOST_TEST((detail::proclaim_outcome(rolled_back, session_id("s1"), 4) == errc::lock_lost));
    txn_result empty;
    empty.committed = true;
    BOOST_TEST((detail::proclaim_outcome(empty, session_id("s1"), 4) == errc::bad_response));
}

BOOST_AUTO_TEST_SUITE_END()
