// Tier A: src/sansio/semaphore_acquisition, the decisions of one semaphore acquisition (what to
// write, list or wait for, how to read each answer), fed with hand-made Consul answers.
#include "sansio/semaphore_acquisition.hpp"
#include "sansio/semaphore_record.hpp"

#include <colock/semaphore_options.hpp>

#include "printers.hpp"

#include <boost/asio/error.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <set>
#include <string>
#include <vector>

namespace {

using colock::errc;
using colock::error_code;
using colock::make_http_error;
using colock::semaphore_flags;
using colock::consul::kv_entry;
using colock::consul::session_id;
using colock::consul::txn_op;
using colock::consul::txn_result;
using colock::consul::txn_verb;
using colock::detail::semaphore_acquisition;
using colock::detail::semaphore_acquisition_params;
using colock::detail::semaphore_record;
using colock::detail::semaphore_step;
using namespace std::chrono_literals;

const session_id ours("11111111-1111-1111-1111-111111111111");
const session_id theirs("22222222-2222-2222-2222-222222222222");
const session_id third("33333333-3333-3333-3333-333333333333");
const session_id fresh("44444444-4444-4444-4444-444444444444");

const auto aborted = make_error_code(boost::asio::error::operation_aborted);
const auto indeterminate = make_error_code(errc::indeterminate_write);

semaphore_acquisition_params params(bool try_once = false, unsigned max_errors = 8)
{
    semaphore_acquisition_params p;
    p.prefix = "jobs/sem";
    p.limit = 2;
    p.value = "v";
    p.try_once = try_once;
    p.max_consecutive_errors = max_errors;
    p.retry_initial = 50ms;
    p.retry_max = 400ms;
    return p;
}

kv_entry record(std::uint64_t modify_index, std::set<std::string> holders, std::uint32_t limit = 2,
                std::uint64_t flags = semaphore_flags)
{
    semaphore_record r;
    r.limit = limit;
    r.holders = std::move(holders);
    kv_entry e;
    e.key = "jobs/sem/.lock";
    e.value = colock::detail::encode_semaphore_record(r);
    e.flags = flags;
    e.modify_index = modify_index;
    return e;
}

kv_entry contender(const session_id& sid, std::uint64_t modify_index = 20)
{
    kv_entry e;
    e.key = "jobs/sem/" + sid.str();
    e.flags = semaphore_flags;
    e.modify_index = modify_index;
    e.session = sid;
    return e;
}

txn_result committed(std::vector<kv_entry> results)
{
    txn_result r;
    r.committed = true;
    r.results = std::move(results);
    return r;
}

txn_result rolled_back(std::size_t op, std::string what)
{
    txn_result r;
    r.committed = false;
    r.errors.push_back({op, std::move(what)});
    return r;
}

const txn_result stale = rolled_back(0, "failed to set key \"jobs/sem/.lock\", index is stale");
const txn_result denied = rolled_back(0, "Permission denied");

std::vector<txn_verb> verbs(const std::vector<txn_op>& ops)
{
    std::vector<txn_verb> v;
    for (const auto& op : ops)
        v.push_back(op.verb);
    return v;
}

semaphore_record holders_of(const std::string& json)
{
    semaphore_record r;
    BOOST_TEST_REQUIRE(!colock::detail::decode_semaphore_record(json, 2, r));
    return r;
}

// A fresh acquisition without a record of our own last write: its first step is the contender write.
semaphore_acquisition started(bool try_once = false, unsigned max_errors = 8)
{
    semaphore_acquisition a(params(try_once, max_errors), ours);
    a.start(std::nullopt);
    return a;
}

// The contender write committed; its get-tree read `tree` (our own key first).
void contended(semaphore_acquisition& a, std::vector<kv_entry> tree)
{
    std::vector<kv_entry> results{contender(ours)};
    results.insert(results.end(), tree.begin(), tree.end());
    a.on_write({}, committed(std::move(results)));
}

// An acquisition whose contender write committed and whose decision is to take a slot.
semaphore_acquisition taking(bool try_once = false, unsigned max_errors = 8)
{
    auto a = started(try_once, max_errors);
    contended(a, {contender(ours), record(30, {theirs.str()}), contender(theirs)});
    return a;
}

// An acquisition whose decision is to wait: both slots are taken by live holders.
semaphore_acquisition waiting(bool try_once = false)
{
    auto a = started(try_once);
    contended(a, {contender(ours), record(30, {theirs.str(), third.str()}), contender(theirs), contender(third)});
    return a;
}

} // namespace

namespace colock::detail {
inline std::ostream& boost_test_print_type(std::ostream& os, semaphore_step s) { return os << static_cast<int>(s); }
} // namespace colock::detail
namespace colock::consul {
inline std::ostream& boost_test_print_type(std::ostream& os, txn_verb v) { return os << static_cast<int>(v); }
} // namespace colock::consul

BOOST_AUTO_TEST_SUITE(test_semaphore_acquisition)

// ---- the contender write ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(without_an_own_write_the_contender_key_is_written_with_a_look_at_the_prefix)
{
    auto a = started();
    BOOST_TEST(a.next() == semaphore_step::write_contender);
    const std::vector<txn_verb> expected{txn_verb::lock, txn_verb::get_tree};
    BOOST_TEST(verbs(a.ops()) == expected);
    const auto& key = a.ops().front();
    BOOST_TEST(key.key == "jobs/sem/" + ours.str());
    BOOST_TEST(key.session.has_value());
    BOOST_TEST(key.session->str() == ours.str());
    BOOST_TEST(key.value == "v");
    BOOST_TEST(key.flags == semaphore_flags);
    BOOST_TEST(a.ops().back().key == "jobs/sem/");
    BOOST_TEST(!a.withdraw_needed()); // nothing sent yet
}

BOOST_AUTO_TEST_CASE(a_committed_contender_write_decides_on_its_tree_and_takes_a_free_slot)
{
    auto a = started();
    contended(a, {contender(ours, 20), record(30, {theirs.str()}), contender(theirs, 25)});
    BOOST_TEST_REQUIRE(a.next() == semaphore_step::write_record);
    BOOST_TEST(a.withdraw_needed());
    BOOST_TEST(a.listed());
    BOOST_TEST(a.listing().size() == 3u); // the tree, without the lock operation's own result
    BOOST_TEST(a.listing_index() == 30u); // the newest index in the tree
    const std::vector<txn_verb> expected{txn_verb::cas};
    BOOST_TEST(verbs(a.ops()) == expected);
    const auto& cas = a.ops().front();
    BOOST_TEST(cas.key == "jobs/sem/.lock");
    BOOST_TEST(cas.index == 30u);
    BOOST_TEST(cas.flags == semaphore_flags);
    const auto written = holders_of(cas.value);
    const std::set<std::string> both{ours.str(), theirs.str()};
    BOOST_TEST(written.holders == both);
}

BOOST_AUTO_TEST_CASE(a_rolled_back_contender_write_asks_about_the_session)
{
    auto a = started();
    a.on_write({}, rolled_back(0, "failed to lock key \"jobs/sem/x\", lock is already held"));
    BOOST_TEST(a.next() == semaphore_step::renew_session);
    BOOST_TEST(a.withdraw_needed());

    // The same live session: not a session problem, back off, then write again.
    a.on_session({}, ours);
    BOOST_TEST_REQUIRE(a.next() == semaphore_step::backoff);
    a.on_backoff_done();
    BOOST_TEST(a.next() == semaphore_step::write_contender);

    // A new session: its contender key at once.
    a.on_write({}, rolled_back(0, "invalid session"));
    BOOST_TEST_REQUIRE(a.next() == semaphore_step::renew_session);
    a.on_session({}, fresh);
    BOOST_TEST_REQUIRE(a.next() == semaphore_step::write_contender);
    BOOST_TEST(a.session().str() == fresh.str());
    BOOST_TEST(a.ops().front().key == "jobs/sem/" + fresh.str());
    BOOST_TEST(a.ops().front().session->str() == fresh.str());
}

BOOST_AUTO_TEST_CASE(a_session_that_cannot_be_started_fails_the_acquisition)
{
    auto a = started();
    a.on_write({}, rolled_back(0, "invalid session"));
    a.on_session(make_http_error(500), session_id{});
    BOOST_TEST(a.next() == semaphore_step::failed);
    BOOST_TEST(a.error() == make_http_error(500));
}

BOOST_AUTO_TEST_CASE(session_doubts_count_as_errors)
{
    auto a = started(false, 2);
    a.on_write({}, rolled_back(0, "invalid session"));
    a.on_session({}, ours);
    a.on_backoff_done();
    a.on_write({}, rolled_back(0, "invalid session"));
    BOOST_TEST(a.next() == semaphore_step::failed);
    BOOST_TEST(a.error() == errc::conflict);
}

BOOST_AUTO_TEST_CASE(a_contender_key_denied_by_an_acl_fails_at_once)
{
    auto a = started();
    a.on_write({}, denied);
    BOOST_TEST(a.next() == semaphore_step::failed);
    BOOST_TEST(a.error() == make_http_error(403));
    BOOST_TEST(a.withdraw_needed());
}

BOOST_AUTO_TEST_CASE(a_transient_contender_write_error_backs_off_and_writes_again)
{
    auto a = started();
    a.on_write(make_http_error(500), txn_result{});
    BOOST_TEST_REQUIRE(a.next() == semaphore_step::backoff);
    BOOST_TEST(a.delay(0.999) <= 50ms); // the first pause: retry_initial, with full jitter
    BOOST_TEST(a.delay(0.0) == 0ms);
    a.on_backoff_done();
    BOOST_TEST(a.next() == semaphore_step::write_contender);
    // An unknown outcome is no reason to stop either: writing the key again settles it.
    a.on_write(indeterminate, txn_result{});
    BOOST_TEST(a.next() == semaphore_step::backoff);
}

BOOST_AUTO_TEST_CASE(a_permanent_contender_write_error_fails_at_once)
{
    auto a = started();
    a.on_write(make_http_error(400), txn_result{});
    BOOST_TEST(a.next() == semaphore_step::failed);
    BOOST_TEST(a.error() == make_http_error(400));
}

BOOST_AUTO_TEST_CASE(too_many_errors_in_a_row_end_the_acquisition_with_the_last_one)
{
    auto a = started(false, 3);
    a.on_write(make_http_error(500), txn_result{}); // 1
    a.on_backoff_done();
    a.on_write(make_http_error(502), txn_result{}); // 2
    BOOST_TEST_REQUIRE(a.next() == semaphore_step::backoff);
    a.on_backoff_done();
    a.on_write(make_http_error(503), txn_result{}); // 3
    BOOST_TEST(a.next() == semaphore_step::failed);
    BOOST_TEST(a.error() == make_http_error(503));

    auto never = started(false, 0); // 0: never give up
    for (int i = 0; i < 50; ++i) {
        never.on_write(make_http_error(500), txn_result{});
        BOOST_TEST_REQUIRE(never.next() == semaphore_step::backoff);
        never.on_backoff_done();
    }
}

BOOST_AUTO_TEST_CASE(the_backoff_grows_over_the_acquisition_up_to_retry_max)
{
    auto a = started(false, 0);
    std::chrono::milliseconds last{0};
    for (int i = 0; i < 8; ++i) {
        a.on_write(make_http_error(500), txn_result{});
        BOOST_TEST_REQUIRE(a.next() == semaphore_step::backoff);
        const auto ceiling = a.delay(0.999);
        BOOST_TEST(ceiling >= last);
        BOOST_TEST(ceiling <= 400ms);
        BOOST_TEST(a.delay(0.999) == ceiling); // asking again does not advance it
        last = ceiling;
        a.on_backoff_done();
    }
    BOOST_TEST(last >= 390ms);
}

// ---- the quick path -------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(an_own_write_with_room_takes_the_quick_path)
{
    semaphore_acquisition a(params(), ours);
    a.start(record(40, {theirs.str()}));
    BOOST_TEST_REQUIRE(a.next() == semaphore_step::write_quick);
    const std::vector<txn_verb> expected{txn_verb::lock, txn_verb::cas};
    BOOST_TEST(verbs(a.ops()) == expected);
    BOOST_TEST(a.ops().front().key == "jobs/sem/" + ours.str());
    BOOST_TEST(a.ops().back().index == 40u);
    const std::set<std::string> both{ours.str(), theirs.str()};
    BOOST_TEST(holders_of(a.ops().back().value).holders == both);

    const auto written_value = a.ops().back().value;
    kv_entry echoed; // Consul echoes neither value nor flags
    echoed.key = "jobs/sem/.lock";
    echoed.modify_index = 41;
    a.on_write({}, committed({contender(ours), echoed}));
    BOOST_TEST_REQUIRE(a.next() == semaphore_step::held);
    BOOST_TEST(a.held_record().modify_index == 41u);
    BOOST_TEST(a.held_record().value == written_value);
    BOOST_TEST(a.held_record().flags == semaphore_flags);
}

BOOST_AUTO_TEST_CASE(an_own_write_without_room_takes_the_full_path)
{
    semaphore_acquisition full(params(), ours);
    full.start(record(40, {theirs.str(), third.str()}));
    BOOST_TEST(full.next() == semaphore_step::write_contender);

    semaphore_acquisition other_limit(params(), ours);
    other_limit.start(record(40, {}, 5));
    BOOST_TEST(other_limit.next() == semaphore_step::write_contender);
}

BOOST_AUTO_TEST_CASE(a_rolled_back_quick_path_falls_back_to_the_full_path_once)
{
    semaphore_acquisition a(params(), ours);
    a.start(record(40, {}));
    a.on_write({}, rolled_back(1, "failed to set key \"jobs/sem/.lock\", index is stale"));
    BOOST_TEST_REQUIRE(a.next() == semaphore_step::write_contender);
    BOOST_TEST(a.withdraw_needed());
    // The own write is used once: the full path does not come back to it.
    a.on_write(make_http_error(500), txn_result{});
    a.on_backoff_done();
    BOOST_TEST(a.next() == semaphore_step::write_contender);
}

BOOST_AUTO_TEST_CASE(a_quick_path_of_unknown_outcome_is_settled_by_the_full_path)
{
    semaphore_acquisition a(params(), ours);
    a.start(record(40, {}));
    a.on_write(indeterminate, txn_result{});
    BOOST_TEST_REQUIRE(a.next() == semaphore_step::write_contender); // at once, no pause
    BOOST_TEST(a.consistent_list());
    BOOST_TEST(a.withdraw_needed());
    // The write had won: its tree shows us in the record. Withdraw and start over.
    contended(a, {contender(ours), record(41, {ours.str()})});
    BOOST_TEST(a.next() == semaphore_step::withdraw);
    BOOST_TEST(!a.consistent_list()); // the write's own read settled it

    semaphore_acquisition limited(params(false, 1), ours);
    limited.start(record(40, {}));
    limited.on_write(indeterminate, txn_result{});
    BOOST_TEST(limited.next() == semaphore_step::failed);
    BOOST_TEST(limited.error() == errc::indeterminate_write);
}

BOOST_AUTO_TEST_CASE(a_quick_path_committed_without_the_record_result_falls_back)
{
    semaphore_acquisition a(params(), ours);
    a.start(record(40, {}));
    a.on_write({}, committed({contender(ours)}));
    BOOST_TEST(a.next() == semaphore_step::write_contender);
}

// ---- deciding ---------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(every_slot_taken_waits_for_a_change_of_the_prefix)
{
    auto a = waiting();
    BOOST_TEST_REQUIRE(a.next() == semaphore_step::wait_change);
    BOOST_TEST(a.listing_index() == 30u);
    // A holder leaves: the slot is ours to take.
    a.on_change({}, {contender(ours), record(35, {theirs.str(), third.str()}), contender(theirs)}, 36);
    BOOST_TEST_REQUIRE(a.next() == semaphore_step::write_record);
    BOOST_TEST(a.ops().front().index == 35u); // pruned of the dead holder, with us added
    const std::set<std::string> alive{ours.str(), theirs.str()};
    BOOST_TEST(holders_of(a.ops().front().value).holders == alive);
    BOOST_TEST(a.listing_index() == 36u);
}

BOOST_AUTO_TEST_CASE(a_change_that_leaves_every_slot_taken_waits_again)
{
    auto a = waiting();
    a.on_change({}, {contender(ours), record(30, {theirs.str(), third.str()}), contender(theirs), contender(third)}, 31);
    BOOST_TEST(a.next() == semaphore_step::wait_change);
}

BOOST_AUTO_TEST_CASE(try_once_gives_up_when_every_slot_is_taken)
{
    auto a = waiting(true);
    BOOST_TEST(a.next() == semaphore_step::not_acquired);
    BOOST_TEST(a.withdraw_needed()); // our contender key was written
}

BOOST_AUTO_TEST_CASE(a_failed_watch_lists_the_prefix_itself_after_a_pause)
{
    auto a = waiting();
    a.on_change(make_http_error(500), {}, 0);
    BOOST_TEST_REQUIRE(a.next() == semaphore_step::backoff);
    a.on_backoff_done();
    BOOST_TEST(a.next() == semaphore_step::list);
    BOOST_TEST(!a.consistent_list());

    auto b = waiting();
    b.on_change(make_http_error(403), {}, 0);
    BOOST_TEST(b.next() == semaphore_step::failed);
    BOOST_TEST(b.error() == make_http_error(403));
}

BOOST_AUTO_TEST_CASE(a_record_with_another_limit_is_a_limit_conflict)
{
    auto a = started();
    contended(a, {contender(ours), record(30, {}, 5)});
    BOOST_TEST(a.next() == semaphore_step::failed);
    BOOST_TEST(a.error() == errc::limit_conflict);
    BOOST_TEST_REQUIRE(a.conflicting_limit().has_value());
    BOOST_TEST(*a.conflicting_limit() == 5u);
    BOOST_TEST(a.withdraw_needed());
}

BOOST_AUTO_TEST_CASE(a_record_with_other_flags_is_a_conflict)
{
    auto a = started();
    contended(a, {contender(ours), record(30, {}, 2, 7)});
    BOOST_TEST(a.next() == semaphore_step::failed);
    BOOST_TEST(a.error() == errc::conflict);
    BOOST_TEST(!a.conflicting_limit().has_value());
}

// ---- the record's check-and-set ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_committed_check_and_set_holds_the_record_it_wrote)
{
    auto a = taking();
    const auto value = a.ops().front().value;
    kv_entry echoed;
    echoed.key = "jobs/sem/.lock";
    echoed.modify_index = 31;
    a.on_write({}, committed({echoed}));
    BOOST_TEST_REQUIRE(a.next() == semaphore_step::held);
    BOOST_TEST(a.held_record().modify_index == 31u); // the fencing token
    BOOST_TEST(a.held_record().value == value);
    BOOST_TEST(a.held_record().flags == semaphore_flags);
    BOOST_TEST(a.session().str() == ours.str());
}

BOOST_AUTO_TEST_CASE(a_lost_check_and_set_race_lists_again_at_once)
{
    auto a = taking();
    a.on_write({}, stale);
    BOOST_TEST_REQUIRE(a.next() == semaphore_step::list);
    BOOST_TEST(!a.consistent_list());
    a.on_list({}, {contender(ours), record(33, {theirs.str()}), contender(theirs)}, 33);
    BOOST_TEST_REQUIRE(a.next() == semaphore_step::write_record);
    BOOST_TEST(a.ops().front().index == 33u);
}

BOOST_AUTO_TEST_CASE(a_check_and_set_denied_by_an_acl_fails_at_once)
{
    auto a = taking();
    a.on_write({}, denied);
    BOOST_TEST(a.next() == semaphore_step::failed);
    BOOST_TEST(a.error() == make_http_error(403));
}

BOOST_AUTO_TEST_CASE(a_check_and_set_refused_otherwise_backs_off_and_lists)
{
    auto a = taking();
    a.on_write({}, rolled_back(0, "something Consul never said before"));
    BOOST_TEST_REQUIRE(a.next() == semaphore_step::backoff);
    a.on_backoff_done();
    BOOST_TEST(a.next() == semaphore_step::list);

    auto b = taking(false, 1);
    b.on_write({}, rolled_back(0, "something Consul never said before"));
    BOOST_TEST(b.next() == semaphore_step::failed);
    BOOST_TEST(b.error() == errc::conflict);

    auto c = taking(); // committed, but without the record's result
    c.on_write({}, committed({}));
    BOOST_TEST(c.next() == semaphore_step::backoff);
    BOOST_TEST(c.error() == errc::bad_response);
}

BOOST_AUTO_TEST_CASE(a_check_and_set_of_unknown_outcome_is_settled_by_a_consistent_list)
{
    // It won: our session is in the record. Withdraw, then write the contender key again.
    auto won = taking();
    won.on_write(indeterminate, txn_result{});
    BOOST_TEST_REQUIRE(won.next() == semaphore_step::backoff);
    won.on_backoff_done();
    BOOST_TEST_REQUIRE(won.next() == semaphore_step::list);
    BOOST_TEST(won.consistent_list());
    won.on_list({}, {contender(ours), record(31, {theirs.str(), ours.str()}), contender(theirs)}, 31);
    BOOST_TEST(won.next() == semaphore_step::withdraw);
    BOOST_TEST(!won.consistent_list());

    // It did not: decide again on what the list shows.
    auto lost = taking();
    lost.on_write(make_error_code(errc::request_timeout), txn_result{});
    lost.on_backoff_done();
    BOOST_TEST(lost.consistent_list());
    lost.on_list({}, {contender(ours), record(30, {theirs.str()}), contender(theirs)}, 32);
    BOOST_TEST(lost.next() == semaphore_step::write_record);

    // A failed resolving list is listed again, still consistently.
    auto retried = taking();
    retried.on_write(indeterminate, txn_result{});
    retried.on_backoff_done();
    retried.on_list(make_http_error(500), {}, 0);
    BOOST_TEST_REQUIRE(retried.next() == semaphore_step::backoff);
    retried.on_backoff_done();
    BOOST_TEST(retried.next() == semaphore_step::list);
    BOOST_TEST(retried.consistent_list());
}

BOOST_AUTO_TEST_CASE(a_check_and_set_with_a_transient_or_permanent_error)
{
    auto transient = taking();
    transient.on_write(make_http_error(500), txn_result{});
    BOOST_TEST_REQUIRE(transient.next() == semaphore_step::backoff);
    transient.on_backoff_done();
    BOOST_TEST(transient.next() == semaphore_step::list);
    BOOST_TEST(!transient.consistent_list());

    auto permanent = taking();
    permanent.on_write(make_http_error(400), txn_result{});
    BOOST_TEST(permanent.next() == semaphore_step::failed);
}

// ---- listing ------------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_list_error_backs_off_or_fails)
{
    auto a = taking();
    a.on_write({}, stale);
    a.on_list(make_http_error(500), {}, 0);
    BOOST_TEST_REQUIRE(a.next() == semaphore_step::backoff);
    a.on_backoff_done();
    BOOST_TEST(a.next() == semaphore_step::list);
    a.on_list(make_http_error(403), {}, 0);
    BOOST_TEST(a.next() == semaphore_step::failed);
    BOOST_TEST(a.error() == make_http_error(403));
}

BOOST_AUTO_TEST_CASE(a_successful_list_resets_the_count_of_errors_in_a_row)
{
    auto a = taking(false, 2);
    a.on_write({}, stale);
    a.on_list(make_http_error(500), {}, 0); // 1
    a.on_backoff_done();
    a.on_list({}, {contender(ours), record(33, {theirs.str()}), contender(theirs)}, 33); // back to 0
    a.on_write({}, stale);
    a.on_list(make_http_error(500), {}, 0); // 1
    BOOST_TEST(a.next() == semaphore_step::backoff);
}

// ---- already a holder ---------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(already_a_holder_withdraws_then_writes_the_contender_key_again)
{
    auto a = started();
    contended(a, {contender(ours), record(30, {ours.str()})});
    BOOST_TEST_REQUIRE(a.next() == semaphore_step::withdraw);
    a.on_withdrawn({}, std::nullopt);
    BOOST_TEST(a.next() == semaphore_step::write_contender);

    // The withdrawal's own write of the record allows the quick path.
    auto b = started();
    contended(b, {contender(ours), record(30, {ours.str()})});
    b.on_withdrawn({}, record(31, {}));
    BOOST_TEST_REQUIRE(b.next() == semaphore_step::write_quick);
    BOOST_TEST(b.ops().back().index == 31u);
}

BOOST_AUTO_TEST_CASE(a_failed_withdrawal_counts_as_an_error)
{
    auto a = started(false, 2);
    contended(a, {contender(ours), record(30, {ours.str()})});
    a.on_withdrawn(make_http_error(500), std::nullopt); // 1: the contender key again, no pause
    BOOST_TEST_REQUIRE(a.next() == semaphore_step::write_contender);
    a.on_write(make_http_error(500), txn_result{}); // 2
    BOOST_TEST(a.next() == semaphore_step::failed);
}

// ---- the end ----------------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_withdrawal_is_needed_once_a_contender_write_was_sent)
{
    auto unsent = started();
    BOOST_TEST(!unsent.withdraw_needed());

    auto abandoned = started(); // the contender write was sent, its answer never read
    abandoned.on_abandoned(aborted);
    BOOST_TEST(abandoned.next() == semaphore_step::failed);
    BOOST_TEST(abandoned.error() == aborted);
    BOOST_TEST(abandoned.withdraw_needed());

    semaphore_acquisition quick(params(), ours);
    quick.start(record(40, {}));
    quick.on_abandoned(aborted);
    BOOST_TEST(quick.withdraw_needed());

    auto failed_write = started();
    failed_write.on_write(make_http_error(400), txn_result{}); // it may still have reached Consul
    BOOST_TEST(failed_write.withdraw_needed());
}

BOOST_AUTO_TEST_CASE(an_abandoned_wait_or_list_ends_the_acquisition)
{
    auto a = waiting();
    a.on_abandoned(aborted);
    BOOST_TEST(a.next() == semaphore_step::failed);
    BOOST_TEST(a.error() == aborted);
    BOOST_TEST(a.withdraw_needed());

    auto b = taking();
    b.on_write({}, stale);
    b.on_abandoned(aborted);
    BOOST_TEST(b.next() == semaphore_step::failed);
}

BOOST_AUTO_TEST_SUITE_END()
