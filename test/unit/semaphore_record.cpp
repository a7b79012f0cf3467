// Tier A: src/sansio/semaphore_record, the decisions of colock::semaphore (the `.lock` record of Go's
// api.Semaphore, pruning, taking a slot, checking a hold), fed with hand-made Consul answers.
#include "sansio/semaphore_record.hpp"

#include <colock/semaphore_options.hpp>

#include "printers.hpp"

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

namespace {

using colock::errc;
using colock::semaphore_flags;
using colock::consul::kv_entry;
using colock::consul::session_id;
using namespace colock::detail;

const std::string ours = "11111111-1111-1111-1111-111111111111";
const std::string alive = "22222222-2222-2222-2222-222222222222";
const std::string dead = "33333333-3333-3333-3333-333333333333";

kv_entry record_entry(const std::string& json, std::uint64_t index = 40, std::uint64_t flags = semaphore_flags)
{
    kv_entry e;
    e.key = "sem/.lock";
    e.value = json;
    e.flags = flags;
    e.create_index = 10;
    e.modify_index = index;
    return e;
}

kv_entry contender(const std::string& sid, const std::string& prefix = "sem")
{
    kv_entry e;
    e.key = prefix + "/" + sid;
    e.flags = semaphore_flags;
    e.create_index = e.modify_index = 20;
    e.lock_index = 1;
    e.session = session_id(sid);
    return e;
}

semaphore_snapshot snapshot_of(std::vector<kv_entry> entries) { return make_semaphore_snapshot(entries, "sem"); }

} // namespace

BOOST_AUTO_TEST_SUITE(semaphore_record_codec)

BOOST_AUTO_TEST_CASE(decodes_what_go_writes)
{
    semaphore_record r;
    BOOST_TEST(!decode_semaphore_record(R"({"Limit":2,"Holders":{")" + alive + R"(":true,")" + ours + R"(":true}})", 5, r));
    BOOST_TEST(r.limit == 2u);
    BOOST_TEST(r.holders.size() == 2u);
    BOOST_TEST(r.holders.count(ours) == 1u);
    BOOST_TEST(r.holders.count(alive) == 1u);
}

BOOST_AUTO_TEST_CASE(an_absent_or_null_record_is_empty_with_our_limit)
{
    semaphore_record r;
    BOOST_TEST(!decode_semaphore_record("", 3, r));
    BOOST_TEST(r.limit == 3u);
    BOOST_TEST(r.holders.empty());
    BOOST_TEST(!decode_semaphore_record("null", 4, r));
    BOOST_TEST(r.limit == 4u);
    BOOST_TEST(!decode_semaphore_record(R"({"Limit":2,"Holders":null})", 4, r));
    BOOST_TEST(r.limit == 2u);
    BOOST_TEST(r.holders.empty());
}

BOOST_AUTO_TEST_CASE(a_missing_limit_is_zero_as_in_go)
{
    semaphore_record r;
    BOOST_TEST(!decode_semaphore_record(R"({"Holders":{}})", 2, r));
    BOOST_TEST(r.limit == 0u);
}

BOOST_AUTO_TEST_CASE(anything_else_is_a_bad_response)
{
    semaphore_record r;
    for (const char* bad : {"{", "[1]", "\"x\"", R"({"Limit":-1})", R"({"Limit":"2"})", R"({"Limit":2,"Holders":[]})",
                            R"({"Limit":99999999999})"}) {
        BOOST_TEST(decode_semaphore_record(bad, 2, r) == errc::bad_response, bad);
    }
}

BOOST_AUTO_TEST_CASE(encodes_like_go_with_sorted_holders)
{
    semaphore_record r;
    r.limit = 2;
    r.holders = {alive, ours};
    BOOST_TEST(encode_semaphore_record(r) == R"({"Limit":2,"Holders":{")" + ours + R"(":true,")" + alive + R"(":true}})");
    semaphore_record empty;
    empty.limit = 1;
    BOOST_TEST(encode_semaphore_record(empty) == R"({"Limit":1,"Holders":{}})");
    semaphore_record back;
    BOOST_TEST(!decode_semaphore_record(encode_semaphore_record(r), 9, back));
    BOOST_TEST((back == r));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(semaphore_snapshot_reading)

BOOST_AUTO_TEST_CASE(a_sibling_prefix_never_leaks_in)
{
    auto sibling_record = record_entry(R"({"Limit":9,"Holders":{}})");
    sibling_record.key = "sem2/.lock";
    const auto snap = snapshot_of({contender(alive, "sem2"), sibling_record, contender(ours)});
    BOOST_TEST(!snap.record_entry.has_value());
    BOOST_TEST(snap.live_sessions.size() == 1u);
    BOOST_TEST(snap.live_sessions.count(ours) == 1u);
}

BOOST_AUTO_TEST_CASE(any_locked_key_under_the_prefix_makes_its_session_alive)
{
    auto other = contender(alive);
    other.key = "sem/some-other-key";
    auto unlocked = contender(dead);
    unlocked.session.reset();
    const auto snap = snapshot_of({record_entry("{}"), other, unlocked});
    BOOST_TEST_REQUIRE(snap.record_entry.has_value());
    BOOST_TEST(snap.record_entry->key == "sem/.lock");
    BOOST_TEST(snap.live_sessions.count(alive) == 1u);
    BOOST_TEST(snap.live_sessions.count(dead) == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(semaphore_decisions)

BOOST_AUTO_TEST_CASE(the_first_contender_creates_the_record)
{
    const auto d = decide_semaphore_acquire(snapshot_of({contender(ours)}), 2, ours);
    BOOST_TEST((d.what == semaphore_decision::kind::take));
    BOOST_TEST(d.cas_index == 0u);
    BOOST_TEST(d.record == R"({"Limit":2,"Holders":{")" + ours + R"(":true}})");
}

BOOST_AUTO_TEST_CASE(a_free_slot_is_taken_with_check_and_set_on_the_record)
{
    const auto rec = record_entry(R"({"Limit":2,"Holders":{")" + alive + R"(":true}})", 77);
    const auto d = decide_semaphore_acquire(snapshot_of({rec, contender(alive), contender(ours)}), 2, ours);
    BOOST_TEST((d.what == semaphore_decision::kind::take));
    BOOST_TEST(d.cas_index == 77u);
    BOOST_TEST(d.live_holders == 1u);
    semaphore_record written;
    BOOST_TEST(!decode_semaphore_record(d.record, 0, written));
    BOOST_TEST(written.holders.size() == 2u);
    BOOST_TEST(written.holders.count(ours) == 1u);
}

BOOST_AUTO_TEST_CASE(live_holders_at_the_limit_make_us_wait)
{
    const auto rec = record_entry(R"({"Limit":1,"Holders":{")" + alive + R"(":true}})");
    const auto d = decide_semaphore_acquire(snapshot_of({rec, contender(alive), contender(ours)}), 1, ours);
    BOOST_TEST((d.what == semaphore_decision::kind::wait));
    BOOST_TEST(d.live_holders == 1u);
}

BOOST_AUTO_TEST_CASE(dead_holders_are_pruned_by_our_write)
{
    const auto rec = record_entry(R"({"Limit":1,"Holders":{")" + dead + R"(":true}})");
    const auto d = decide_semaphore_acquire(snapshot_of({rec, contender(ours)}), 1, ours);
    BOOST_TEST_REQUIRE((d.what == semaphore_decision::kind::take));
    semaphore_record written;
    BOOST_TEST(!decode_semaphore_record(d.record, 0, written));
    BOOST_TEST(written.holders.count(dead) == 0u);
    BOOST_TEST(written.holders.count(ours) == 1u);
}

BOOST_AUTO_TEST_CASE(other_flags_on_the_record_are_a_conflict)
{
    const auto rec = record_entry(R"({"Limit":1,"Holders":{}})", 40, 0x2ddccbc058a50c18ULL);
    const auto d = decide_semaphore_acquire(snapshot_of({rec, contender(ours)}), 1, ours);
    BOOST_TEST((d.what == semaphore_decision::kind::failed));
    BOOST_TEST(d.error == errc::conflict);
}

BOOST_AUTO_TEST_CASE(another_limit_is_a_limit_conflict_naming_both)
{
    const auto rec = record_entry(R"({"Limit":3,"Holders":{}})");
    const auto d = decide_semaphore_acquire(snapshot_of({rec, contender(ours)}), 2, ours);
    BOOST_TEST((d.what == semaphore_decision::kind::failed));
    BOOST_TEST(d.error == errc::limit_conflict);
    BOOST_TEST(d.record_limit == 3u);
}

BOOST_AUTO_TEST_CASE(an_undecodable_record_fails)
{
    const auto d = decide_semaphore_acquire(snapshot_of({record_entry("not json"), contender(ours)}), 2, ours);
    BOOST_TEST((d.what == semaphore_decision::kind::failed));
    BOOST_TEST(d.error == errc::bad_response);
}

BOOST_AUTO_TEST_CASE(finding_ourselves_in_the_record_is_reported)
{
    const auto rec = record_entry(R"({"Limit":1,"Holders":{")" + ours + R"(":true}})");
    const auto d = decide_semaphore_acquire(snapshot_of({rec, contender(ours)}), 1, ours);
    BOOST_TEST((d.what == semaphore_decision::kind::already_holder));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(semaphore_holding)

BOOST_AUTO_TEST_CASE(held_while_listed_and_alive)
{
    const auto rec = record_entry(R"({"Limit":2,"Holders":{")" + ours + R"(":true}})");
    BOOST_TEST((check_semaphore_hold(snapshot_of({rec, contender(ours)}), 2, ours) == semaphore_hold::held));
}

BOOST_AUTO_TEST_CASE(lost_when_removed_from_the_record_or_the_record_is_gone)
{
    const auto rec = record_entry(R"({"Limit":2,"Holders":{")" + alive + R"(":true}})");
    BOOST_TEST((check_semaphore_hold(snapshot_of({rec, contender(ours)}), 2, ours) == semaphore_hold::lost));
    BOOST_TEST((check_semaphore_hold(snapshot_of({contender(ours)}), 2, ours) == semaphore_hold::lost));
}

BOOST_AUTO_TEST_CASE(lost_when_our_contender_key_is_gone_since_anyone_may_prune_us)
{
    const auto rec = record_entry(R"({"Limit":2,"Holders":{")" + ours + R"(":true}})");
    BOOST_TEST((check_semaphore_hold(snapshot_of({rec}), 2, ours) == semaphore_hold::lost));
}

BOOST_AUTO_TEST_CASE(unreadable_when_the_record_is_replaced_by_something_else)
{
    const auto rec = record_entry(R"({"Limit":2,"Holders":{")" + ours + R"(":true}})", 40, 0);
    BOOST_TEST((check_semaphore_hold(snapshot_of({rec, contender(ours)}), 2, ours) == semaphore_hold::unreadable));
}

BOOST_AUTO_TEST_CASE(release_removes_only_us_with_check_and_set)
{
    const std::optional<kv_entry> rec = record_entry(R"({"Limit":2,"Holders":{")" + alive + R"(":true,")" + ours + R"(":true}})", 91);
    const auto removal = semaphore_record_without(rec, 2, ours);
    BOOST_TEST_REQUIRE(removal.has_value());
    BOOST_TEST(removal->cas_index == 91u);
    BOOST_TEST(removal->record == R"({"Limit":2,"Holders":{")" + alive + R"(":true}})");
    BOOST_TEST(!semaphore_record_without(rec, 2, dead).has_value());
    BOOST_TEST(!semaphore_record_without(std::nullopt, 2, ours).has_value());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(semaphore_quick_path)

BOOST_AUTO_TEST_CASE(room_in_our_last_write_takes_a_slot_with_check_and_set_on_it)
{
    const auto d = decide_from_own_write(record_entry(R"({"Limit":2,"Holders":{")" + dead + R"(":true}})", 55), 2, ours);
    BOOST_TEST_REQUIRE(d.has_value());
    BOOST_TEST((d->what == semaphore_decision::kind::take));
    BOOST_TEST(d->cas_index == 55u);
    BOOST_TEST(d->record == R"({"Limit":2,"Holders":{")" + ours + R"(":true,")" + dead + R"(":true}})");
}

BOOST_AUTO_TEST_CASE(anything_doubtful_goes_the_full_way)
{
    // Full as far as we know (liveness is unknown here: every listed holder counts).
    BOOST_TEST(!decide_from_own_write(record_entry(R"({"Limit":1,"Holders":{")" + dead + R"(":true}})"), 1, ours));
    // Already listed, another limit, other flags, undecodable.
    BOOST_TEST(!decide_from_own_write(record_entry(R"({"Limit":2,"Holders":{")" + ours + R"(":true}})"), 2, ours));
    BOOST_TEST(!decide_from_own_write(record_entry(R"({"Limit":3,"Holders":{}})"), 2, ours));
    BOOST_TEST(!decide_from_own_write(record_entry(R"({"Limit":2,"Holders":{}})", 40, 7), 2, ours));
    BOOST_TEST(!decide_from_own_write(record_entry("{"), 2, ours));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(semaphore_rollbacks)

colock::consul::txn_result rolled_back(const std::string& what)
{
    colock::consul::txn_result r;
    r.committed = false;
    colock::consul::txn_error e;
    e.op_index = 0;
    e.what = what;
    r.errors.push_back(e);
    return r;
}

BOOST_AUTO_TEST_CASE(only_a_stale_index_is_a_race_to_retry)
{
    BOOST_TEST(!semaphore_rollback_error(rolled_back(R"(failed to set key "sem/.lock", index is stale)")));
    BOOST_TEST(semaphore_rollback_error(rolled_back("Permission denied")) == colock::make_http_error(403));
    BOOST_TEST(semaphore_rollback_error(rolled_back(R"(failed to delete key "sem/x": Permission denied)")) ==
               colock::make_http_error(403));
    BOOST_TEST(semaphore_rollback_error(rolled_back(R"(failed to lock key "sem/x", lock is already held)")) ==
               errc::conflict);
    // A key named like the reason is not the reason.
    BOOST_TEST(semaphore_rollback_error(rolled_back(R"(failed to delete key "index is stale": Permission denied)")) ==
               colock::make_http_error(403));
    BOOST_TEST(semaphore_rollback_error(rolled_back(R"(failed to lock key "index is stale", invalid session)")) ==
               errc::conflict);
    BOOST_TEST(semaphore_rollback_error(colock::consul::txn_result{}) == errc::bad_response);
}

BOOST_AUTO_TEST_SUITE_END()
