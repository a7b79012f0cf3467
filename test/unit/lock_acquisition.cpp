// Tier A: src/sansio/lock_acquisition, the decisions of one lock acquisition (what to write, how to
// read each answer), fed with hand-made Consul answers.
#include "sansio/lock_acquisition.hpp"

#include <colock/lock_options.hpp>

#include "printers.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>

namespace {

using colock::errc;
using colock::error_code;
using colock::lock_flags;
using colock::consul::kv_entry;
using colock::consul::session_id;
using colock::consul::txn_op;
using colock::consul::txn_result;
using colock::consul::txn_verb;
using colock::detail::acquire_step;
using colock::detail::lock_acquisition;
using colock::detail::lock_acquisition_params;
using namespace std::chrono_literals;

const session_id ours("11111111-1111-1111-1111-111111111111");
const session_id theirs("22222222-2222-2222-2222-222222222222");

lock_acquisition_params params(bool try_once = false, unsigned max_errors = 8)
{
    lock_acquisition_params p;
    p.key = "jobs/a";
    p.value = "v";
    p.flags = lock_flags;
    p.try_once = try_once;
    p.max_consecutive_errors = max_errors;
    return p;
}

kv_entry entry(std::uint64_t modify_index, std::optional<session_id> holder, std::uint64_t flags = lock_flags)
{
    kv_entry e;
    e.key = "jobs/a";
    e.flags = flags;
    e.modify_index = modify_index;
    e.session = std::move(holder);
    return e;
}

txn_result committed(kv_entry lock_result)
{
    txn_result r;
    r.committed = true;
    r.results.push_back(std::move(lock_result));
    return r;
}

txn_result rolled_back(std::size_t op, std::string what)
{
    txn_result r;
    r.committed = false;
    r.errors.push_back({op, std::move(what)});
    return r;
}

std::vector<txn_verb> verbs(const std::vector<txn_op>& ops)
{
    std::vector<txn_verb> v;
    for (const auto& op : ops)
        v.push_back(op.verb);
    return v;
}

// A fresh acquisition that knows the key: `known` empty optional = absent.
lock_acquisition started(std::optional<kv_entry> known, bool try_once = false)
{
    lock_acquisition a(params(try_once), ours);
    a.start(std::optional<std::optional<kv_entry>>(std::move(known)), 7);
    return a;
}

} // namespace

namespace colock::detail {
inline std::ostream& boost_test_print_type(std::ostream& os, acquire_step s) { return os << static_cast<int>(s); }
} // namespace colock::detail
namespace colock::consul {
inline std::ostream& boost_test_print_type(std::ostream& os, txn_verb v) { return os << static_cast<int>(v); }
} // namespace colock::consul

BOOST_AUTO_TEST_SUITE(test_lock_acquisition)

BOOST_AUTO_TEST_CASE(unknown_key_is_written_at_once_guarded_by_check_not_exists)
{
    lock_acquisition a(params(), ours);
    a.start(std::nullopt, 0);
    BOOST_TEST(a.next() == acquire_step::write);
    const std::vector<txn_verb> expected{txn_verb::check_not_exists, txn_verb::lock};
    BOOST_TEST(verbs(a.ops()) == expected);
    const auto& lock_op = a.ops().back();
    BOOST_TEST(lock_op.key == "jobs/a");
    BOOST_TEST(lock_op.value == "v");
    BOOST_TEST(lock_op.flags == lock_flags); // flags on every lock write
    BOOST_TEST(lock_op.session.has_value());
    BOOST_TEST(lock_op.session->str() == ours.str());
}

BOOST_AUTO_TEST_CASE(the_fencing_token_is_the_modify_index_of_the_lock_operation)
{
    auto a = started(std::nullopt);
    auto r = committed(entry(4242, ours));
    a.on_write({}, r);
    BOOST_TEST(a.next() == acquire_step::held);
    BOOST_TEST(a.token() == 4242u);
}

BOOST_AUTO_TEST_CASE(the_token_comes_from_the_last_result_when_checks_return_entries)
{
    auto a = started(entry(10, std::nullopt));
    txn_result r;
    r.committed = true;
    r.results.push_back(entry(10, std::nullopt)); // check-index returns the entry it checked
    r.results.push_back(entry(11, ours));
    a.on_write({}, r);
    BOOST_TEST(a.next() == acquire_step::held);
    BOOST_TEST(a.token() == 11u);
}

BOOST_AUTO_TEST_CASE(a_committed_result_without_our_session_is_a_bad_response)
{
    auto a = started(std::nullopt);
    auto r = committed(entry(5, theirs));
    a.on_write({}, r);
    BOOST_TEST(a.next() == acquire_step::failed);
    BOOST_TEST(a.error() == errc::bad_response);
}

BOOST_AUTO_TEST_CASE(a_free_key_is_written_guarded_by_its_modify_index)
{
    auto a = started(entry(77, std::nullopt));
    BOOST_TEST(a.next() == acquire_step::write);
    const std::vector<txn_verb> expected{txn_verb::check_index, txn_verb::lock};
    BOOST_TEST(verbs(a.ops()) == expected);
    BOOST_TEST(a.ops().front().index == 77u);
}

BOOST_AUTO_TEST_CASE(a_key_with_other_flags_is_a_conflict_and_never_written)
{
    // Remembered other flags are checked with Consul first: the key may have been deleted since.
    auto a = started(entry(3, std::nullopt, 42));
    BOOST_TEST(a.next() == acquire_step::read);
    a.on_read({}, entry(3, std::nullopt, 42), 3);
    BOOST_TEST(a.next() == acquire_step::failed);
    BOOST_TEST(a.error() == errc::conflict);
    BOOST_TEST(a.ops().empty());

    auto b = started(entry(3, std::nullopt, 42));
    b.on_read({}, std::nullopt, 9); // gone: ours to take
    BOOST_TEST(b.next() == acquire_step::write);
}

BOOST_AUTO_TEST_CASE(a_guessed_write_on_a_foreign_key_reads_then_reports_the_conflict)
{
    lock_acquisition a(params(), ours);
    a.start(std::nullopt, 0);
    auto r = rolled_back(0, "key \"jobs/a\" exists");
    a.on_write({}, r);
    BOOST_TEST(a.next() == acquire_step::read);
    a.on_read({}, entry(3, std::nullopt, 0), 3);
    BOOST_TEST(a.next() == acquire_step::failed);
    BOOST_TEST(a.error() == errc::conflict);
}

BOOST_AUTO_TEST_CASE(reasons_are_read_outside_the_quoted_key_and_from_the_failing_operation)
{
    // A guard that failed on a key whose name mentions "lock delay" and "session" is just a failed guard.
    auto a = started(entry(5, std::nullopt));
    auto guard = rolled_back(0, "current modify index 6 != 5 for key \"a session under lock delay\"");
    a.on_write({}, guard);
    BOOST_TEST(a.next() == acquire_step::read);
    // The same words inside the quotes of the lock operation's error do not count either.
    auto b = started(entry(5, std::nullopt));
    auto held = rolled_back(1, "failed to lock key \"lock delay\", lock is already held");
    b.on_write({}, held);
    BOOST_TEST(b.next() == acquire_step::read);
    BOOST_TEST(!b.backing_off_for_lock_delay());
}

BOOST_AUTO_TEST_CASE(a_write_of_unknown_outcome_stays_unresolved_until_a_read_settles_it)
{
    auto a = started(std::nullopt);
    BOOST_TEST(!a.unresolved());
    a.on_write(make_error_code(errc::indeterminate_write), txn_result{});
    BOOST_TEST(a.unresolved());
    a.on_read(colock::make_http_error(500), std::nullopt, 0); // the read fails: still unknown
    BOOST_TEST(a.unresolved());
    a.on_backoff_done();
    a.on_read({}, std::nullopt, 4);
    BOOST_TEST(!a.unresolved());
}

BOOST_AUTO_TEST_CASE(a_key_held_by_another_session_is_waited_for)
{
    auto a = started(entry(9, theirs));
    BOOST_TEST(a.next() == acquire_step::wait_change);
    a.on_change({}, entry(12, std::nullopt), 12);
    BOOST_TEST(a.next() == acquire_step::write);
    BOOST_TEST(a.ops().front().verb == txn_verb::check_index);
    BOOST_TEST(a.ops().front().index == 12u);
}

BOOST_AUTO_TEST_CASE(try_once_gives_up_when_consul_says_another_session_holds_the_key)
{
    // A remembered holder may be gone: try once reads before it gives up.
    auto a = started(entry(9, theirs), true);
    BOOST_TEST(a.next() == acquire_step::read);
    a.on_read({}, entry(9, theirs), 9);
    BOOST_TEST(a.next() == acquire_step::not_acquired);

    auto b = started(entry(9, theirs), true);
    b.on_read({}, entry(10, std::nullopt), 10); // the holder has left meanwhile
    BOOST_TEST(b.next() == acquire_step::write);
}

BOOST_AUTO_TEST_CASE(a_key_held_by_our_own_session_is_unlocked_and_locked_again_for_a_fresh_token)
{
    auto a = started(entry(20, ours));
    BOOST_TEST(a.next() == acquire_step::write);
    const std::vector<txn_verb> expected{txn_verb::check_index, txn_verb::unlock, txn_verb::lock};
    BOOST_TEST(verbs(a.ops()) == expected);
}

BOOST_AUTO_TEST_CASE(a_failed_guard_leads_to_a_read_then_a_new_decision)
{
    auto a = started(std::nullopt);
    auto r = rolled_back(0, "key \"jobs/a\" exists");
    a.on_write({}, r);
    BOOST_TEST(a.next() == acquire_step::read);
    BOOST_TEST(!a.consistent_read());
    a.on_read({}, entry(30, theirs), 30);
    BOOST_TEST(a.next() == acquire_step::wait_change);
    BOOST_TEST(a.key_index() == 30u);
}

BOOST_AUTO_TEST_CASE(a_rollback_because_the_lock_is_held_reads_to_learn_the_holder)
{
    auto a = started(entry(5, std::nullopt));
    auto r = rolled_back(1, "failed to lock key \"jobs/a\", lock is already held");
    a.on_write({}, r);
    BOOST_TEST(a.next() == acquire_step::read);
    auto t = started(entry(5, std::nullopt), true);
    t.on_write({}, r);
    BOOST_TEST(t.next() == acquire_step::not_acquired);
}

BOOST_AUTO_TEST_CASE(lock_delay_backs_off_briefly_with_jitter_and_writes_again)
{
    auto a = started(entry(5, std::nullopt));
    a.set_backoff(50ms, 2s, 250ms);
    auto r = rolled_back(1, "failed to lock key \"jobs/a\" due to lock delay");
    std::chrono::milliseconds previous_ceiling{0};
    for (int i = 0; i < 10; ++i) {
        a.on_write({}, r);
        BOOST_TEST_REQUIRE(a.next() == acquire_step::backoff);
        BOOST_TEST(a.backing_off_for_lock_delay());
        const auto low = a.delay(0.0), high = a.delay(0.999);
        BOOST_TEST(low.count() > 0);
        BOOST_TEST(high <= 250ms);          // bounded: never a fixed 5 s sleep
        BOOST_TEST(high >= previous_ceiling / 2);
        BOOST_TEST(low < high);             // jitter: waiters do not retry in step
        previous_ceiling = high;
        a.on_backoff_done();
        BOOST_TEST_REQUIRE(a.next() == acquire_step::write);
        BOOST_TEST(a.ops().back().verb == txn_verb::lock);
    }
    BOOST_TEST(previous_ceiling >= 200ms); // grew up to the cap
}

BOOST_AUTO_TEST_CASE(try_once_under_lock_delay_is_not_acquired)
{
    auto a = started(entry(5, std::nullopt), true);
    auto r = rolled_back(1, "failed to lock key \"jobs/a\" due to lock delay");
    a.on_write({}, r);
    BOOST_TEST(a.next() == acquire_step::not_acquired);
}

BOOST_AUTO_TEST_CASE(a_write_of_unknown_outcome_is_resolved_by_a_consistent_read)
{
    auto applied = started(std::nullopt);
    applied.on_write(make_error_code(errc::indeterminate_write), txn_result{});
    BOOST_TEST(applied.next() == acquire_step::read);
    BOOST_TEST(applied.consistent_read());
    applied.on_read({}, entry(55, ours), 55);
    BOOST_TEST(applied.next() == acquire_step::held);
    BOOST_TEST(applied.token() == 55u);

    auto not_applied = started(std::nullopt);
    not_applied.on_write(make_error_code(errc::request_timeout), txn_result{});
    BOOST_TEST(not_applied.consistent_read());
    not_applied.on_read({}, std::nullopt, 60);
    BOOST_TEST(not_applied.next() == acquire_step::write); // absent: try again
    BOOST_TEST(!not_applied.consistent_read());
}

BOOST_AUTO_TEST_CASE(a_failed_resolution_read_is_retried_and_stays_consistent)
{
    auto a = started(std::nullopt);
    a.on_write(make_error_code(errc::indeterminate_write), txn_result{});
    a.on_read(colock::make_http_error(500), std::nullopt, 0);
    BOOST_TEST(a.next() == acquire_step::backoff);
    a.on_backoff_done();
    BOOST_TEST(a.next() == acquire_step::read);
    BOOST_TEST(a.consistent_read());
}

BOOST_AUTO_TEST_CASE(retryable_errors_back_off_and_give_up_after_the_limit)
{
    lock_acquisition a(params(false, 3), ours);
    a.start(std::nullopt, 0);
    a.on_write(colock::make_http_error(500), txn_result{}); // 1
    BOOST_TEST_REQUIRE(a.next() == acquire_step::backoff);
    a.on_backoff_done();
    BOOST_TEST_REQUIRE(a.next() == acquire_step::read); // the state is unknown after a failed write
    a.on_read(colock::make_http_error(503), std::nullopt, 0); // 2
    BOOST_TEST_REQUIRE(a.next() == acquire_step::backoff);
    a.on_backoff_done();
    a.on_read(colock::make_http_error(503), std::nullopt, 0); // 3
    BOOST_TEST(a.next() == acquire_step::failed);
    BOOST_TEST(a.error() == colock::make_http_error(503));
}

BOOST_AUTO_TEST_CASE(error_backoff_grows_and_is_capped)
{
    lock_acquisition a(params(false, 0), ours);
    a.set_backoff(50ms, 400ms, 250ms);
    a.start(std::nullopt, 0);
    std::chrono::milliseconds last{0};
    for (int i = 0; i < 8; ++i) {
        a.on_write(colock::make_http_error(500), txn_result{});
        BOOST_TEST_REQUIRE(a.next() == acquire_step::backoff);
        BOOST_TEST(!a.backing_off_for_lock_delay());
        last = a.delay(0.999);
        BOOST_TEST(last <= 400ms);
        a.on_backoff_done();
        a.on_read({}, std::nullopt, 1);
    }
    BOOST_TEST(last >= 350ms);
}

BOOST_AUTO_TEST_CASE(permanent_errors_fail_at_once)
{
    auto a = started(std::nullopt);
    a.on_write(colock::make_http_error(403), txn_result{});
    BOOST_TEST(a.next() == acquire_step::failed);
    BOOST_TEST(a.error() == colock::make_http_error(403));

    auto b = started(entry(1, theirs));
    b.on_change(colock::make_http_error(403), std::nullopt, 0);
    BOOST_TEST(b.next() == acquire_step::failed);
}

BOOST_AUTO_TEST_CASE(transient_watch_errors_keep_waiting_until_too_many)
{
    lock_acquisition a(params(false, 3), ours);
    a.start(std::optional<std::optional<kv_entry>>(entry(1, theirs)), 1);
    a.on_change(colock::make_http_error(500), std::nullopt, 0);
    BOOST_TEST(a.next() == acquire_step::wait_change);
    a.on_change(colock::make_http_error(500), std::nullopt, 0);
    BOOST_TEST(a.next() == acquire_step::wait_change);
    a.on_change(colock::make_http_error(500), std::nullopt, 0);
    BOOST_TEST(a.next() == acquire_step::failed);
}

BOOST_AUTO_TEST_CASE(an_invalid_session_renews_the_session_and_starts_over)
{
    auto a = started(std::nullopt);
    auto r = rolled_back(1, "invalid session \"11111111-1111-1111-1111-111111111111\"");
    a.on_write({}, r);
    BOOST_TEST(a.next() == acquire_step::renew_session); // at once: the lock must not wait for the renewal timer
    const session_id fresh("33333333-3333-3333-3333-333333333333");
    a.on_session({}, fresh);
    BOOST_TEST(a.next() == acquire_step::read);
    a.on_read({}, std::nullopt, 3);
    BOOST_TEST(a.next() == acquire_step::write);
    BOOST_TEST(a.ops().back().session->str() == fresh.str());
    // Refused again: now with a backoff first, so a session Consul keeps refusing cannot spin.
    a.on_write({}, r);
    BOOST_TEST(a.next() == acquire_step::backoff);
    a.on_backoff_done();
    BOOST_TEST(a.next() == acquire_step::renew_session);
}

BOOST_AUTO_TEST_CASE(a_rolled_back_result_without_errors_is_a_bad_response)
{
    auto a = started(std::nullopt);
    txn_result r;
    r.committed = false;
    a.on_write({}, r);
    BOOST_TEST(a.next() == acquire_step::failed);
    BOOST_TEST(a.error() == errc::bad_response);
}

BOOST_AUTO_TEST_CASE(unexplained_rollbacks_cannot_loop_forever)
{
    auto a = started(entry(5, std::nullopt));
    auto r = rolled_back(0, "something Consul never said before");
    int rounds = 0;
    while (a.next() != acquire_step::failed && rounds < 1000) {
        a.on_write({}, r);
        if (a.next() == acquire_step::read)
            a.on_read({}, entry(5, std::nullopt), 5);
        ++rounds;
    }
    BOOST_TEST(a.next() == acquire_step::failed);
    BOOST_TEST(rounds < 100);
}

BOOST_AUTO_TEST_SUITE_END()
