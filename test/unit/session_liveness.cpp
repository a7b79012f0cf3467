// Tier A: src/consul/session_liveness.hpp, the renewal schedule and the fail-safe deadline of a managed session
// (TESTING.md D1), driven with synthetic steady_clock time points.
#include "consul/session_liveness.hpp"

#include <colock/error.hpp>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <optional>

namespace {

using colock::errc;
using colock::consul::detail::session_liveness;
using namespace std::chrono_literals;
using time_point = session_liveness::time_point;

const time_point t0 = time_point{} + 1000h;

bool same(time_point a, time_point b) { return a == b; }

} // namespace

BOOST_AUTO_TEST_SUITE(test_session_liveness)

BOOST_AUTO_TEST_CASE(before_creation_nothing_is_live_and_nothing_is_lost)
{
    session_liveness l;
    BOOST_TEST(!l.live());
    BOOST_TEST(!l.check(t0).has_value());
    BOOST_TEST(!l.lost_reason().has_value());
}

BOOST_AUTO_TEST_CASE(first_renewal_is_due_at_half_the_ttl_without_jitter)
{
    session_liveness l;
    l.on_created(t0, 15s);
    BOOST_TEST(l.live());
    BOOST_TEST(same(l.next_renew(0.0), t0 + 7500ms));
}

BOOST_AUTO_TEST_CASE(jitter_moves_the_renewal_earlier_by_up_to_a_tenth_of_the_ttl)
{
    session_liveness l;
    l.on_created(t0, 15s);
    // 1500 ms x 0.999 = 1498.5 ms, truncated to 1498 ms.
    BOOST_TEST(same(l.next_renew(0.999), t0 + 7500ms - 1498ms));
    BOOST_TEST(same(l.next_renew(0.5), t0 + 7500ms - 750ms));
    BOOST_TEST((l.next_renew(0.999) > t0 + 6s));
}

BOOST_AUTO_TEST_CASE(renewal_schedule_follows_the_send_time_of_the_last_success)
{
    session_liveness l;
    l.on_created(t0, 15s);
    l.on_renewed(t0 + 7s, 0ms); // zero: the reply carried no TTL, keep ours
    BOOST_TEST(l.ttl().count() == 15000);
    BOOST_TEST(same(l.next_renew(0.0), t0 + 7s + 7500ms));
}

BOOST_AUTO_TEST_CASE(a_larger_ttl_from_the_server_is_adopted_and_moves_the_deadline)
{
    session_liveness l;
    l.on_created(t0, 15s);
    BOOST_TEST(same(l.deadline(), t0 + 15s - 750ms));
    l.on_renewed(t0 + 7s, 30s);
    BOOST_TEST(l.ttl().count() == 30000);
    BOOST_TEST(same(l.deadline(), t0 + 7s + 30s - 1500ms)); // default margin follows the new TTL
    BOOST_TEST(same(l.next_renew(0.0), t0 + 7s + 15s));
}

BOOST_AUTO_TEST_CASE(deadline_is_send_time_plus_ttl_minus_a_twentieth_by_default)
{
    session_liveness l;
    l.on_created(t0, 20s);
    BOOST_TEST(same(l.deadline(), t0 + 19s));
    // The reply came long after the send; only the send time counts.
    l.on_renewed(t0 + 10s, 20s);
    BOOST_TEST(same(l.deadline(), t0 + 29s));
}

BOOST_AUTO_TEST_CASE(deadline_uses_an_explicit_margin)
{
    session_liveness l(2s);
    l.on_created(t0, 15s);
    BOOST_TEST(same(l.deadline(), t0 + 13s));

    session_liveness m;
    m.set_margin(3s);
    m.on_created(t0, 15s);
    BOOST_TEST(same(m.deadline(), t0 + 12s));
}

BOOST_AUTO_TEST_CASE(an_explicit_margin_is_capped_at_half_the_ttl)
{
    session_liveness l(10s);
    l.on_created(t0, 15s);
    BOOST_TEST(same(l.deadline(), t0 + 7500ms));
}

BOOST_AUTO_TEST_CASE(failed_renewal_retries_after_one_second_for_a_long_ttl)
{
    session_liveness l;
    l.on_created(t0, 15s);
    l.on_renew_failed(t0 + 7500ms);
    BOOST_TEST(l.consecutive_failures() == 1u);
    BOOST_TEST(l.retry_interval().count() == 1000);
    BOOST_TEST(same(l.next_renew(0.0), t0 + 8500ms));
    BOOST_TEST(same(l.next_renew(0.999), t0 + 8500ms)); // no jitter on retries
    l.on_renew_failed(t0 + 8500ms);
    BOOST_TEST(l.consecutive_failures() == 2u);
    BOOST_TEST(same(l.next_renew(0.0), t0 + 9500ms));
}

BOOST_AUTO_TEST_CASE(failed_renewal_retries_after_a_fifth_of_a_short_ttl)
{
    session_liveness l;
    l.on_created(t0, 2s);
    BOOST_TEST(l.retry_interval().count() == 400);
    l.on_renew_failed(t0 + 1s);
    BOOST_TEST(same(l.next_renew(0.0), t0 + 1400ms));
}

BOOST_AUTO_TEST_CASE(failed_renewal_never_schedules_a_retry_past_the_deadline)
{
    session_liveness l;
    l.on_created(t0, 15s); // deadline t0 + 14250 ms
    l.on_renew_failed(t0 + 14s);
    BOOST_TEST(same(l.next_renew(0.0), t0 + 14250ms));
    BOOST_TEST(same(l.next_renew(0.0), l.deadline()));
}

BOOST_AUTO_TEST_CASE(a_success_after_failures_returns_to_the_normal_schedule)
{
    session_liveness l;
    l.on_created(t0, 15s);
    l.on_renew_failed(t0 + 7500ms);
    l.on_renew_failed(t0 + 8500ms);
    l.on_renewed(t0 + 9500ms, 15s);
    BOOST_TEST(l.consecutive_failures() == 0u);
    BOOST_TEST(same(l.next_renew(0.0), t0 + 9500ms + 7500ms));
    BOOST_TEST(same(l.deadline(), t0 + 9500ms + 14250ms));
}

BOOST_AUTO_TEST_CASE(check_before_the_deadline_reports_no_loss)
{
    session_liveness l;
    l.on_created(t0, 15s);
    BOOST_TEST(!l.check(t0).has_value());
    BOOST_TEST(!l.check(l.deadline() - 1ns).has_value());
    BOOST_TEST(l.live());
}

BOOST_AUTO_TEST_CASE(check_at_the_deadline_reports_session_expired)
{
    session_liveness l;
    l.on_created(t0, 15s);
    const auto lost = l.check(l.deadline());
    BOOST_REQUIRE(lost.has_value());
    BOOST_TEST((*lost == errc::session_expired));
    BOOST_TEST(!l.live());
    BOOST_TEST((l.lost_reason() == errc::session_expired));
}

BOOST_AUTO_TEST_CASE(check_long_after_the_deadline_reports_session_expired_even_with_failed_renewals)
{
    session_liveness l;
    l.on_created(t0, 15s);
    l.on_renew_failed(t0 + 8s);
    l.on_renew_failed(t0 + 9s);
    const auto lost = l.check(t0 + 1h);
    BOOST_REQUIRE(lost.has_value());
    BOOST_TEST((*lost == errc::session_expired));
}

BOOST_AUTO_TEST_CASE(a_renewal_reply_after_expiry_does_not_revive_the_session)
{
    session_liveness l;
    l.on_created(t0, 15s);
    BOOST_REQUIRE(l.check(t0 + 15s).has_value());
    l.on_renewed(t0 + 14s, 15s);
    BOOST_TEST(!l.live());
    BOOST_TEST((l.check(t0 + 16s) == errc::session_expired));
    l.on_renew_failed(t0 + 16s);
    BOOST_TEST(l.consecutive_failures() == 0u);
}

BOOST_AUTO_TEST_CASE(invalidation_reports_session_invalidated_and_stays_lost)
{
    session_liveness l;
    l.on_created(t0, 15s);
    l.on_invalidated();
    BOOST_TEST(!l.live());
    BOOST_TEST((l.lost_reason() == errc::session_invalidated));
    // Passing the deadline later does not change the reason.
    BOOST_TEST((l.check(t0 + 1h) == errc::session_invalidated));
}

BOOST_AUTO_TEST_CASE(zero_ttl_means_no_deadline_and_no_renewal)
{
    session_liveness l;
    l.on_created(t0, 0ms);
    BOOST_TEST(l.live());
    BOOST_TEST(same(l.deadline(), time_point::max()));
    BOOST_TEST(same(l.next_renew(0.0), time_point::max()));
    BOOST_TEST(same(l.next_renew(0.999), time_point::max()));
    BOOST_TEST(!l.check(t0 + 10000h).has_value());
    BOOST_TEST(l.live());
}

BOOST_AUTO_TEST_CASE(zero_ttl_session_is_still_lost_on_invalidation)
{
    session_liveness l;
    l.on_created(t0, 0ms);
    l.on_invalidated();
    BOOST_TEST((l.check(t0) == errc::session_invalidated));
}

BOOST_AUTO_TEST_CASE(closing_ends_tracking_without_a_loss_reason)
{
    session_liveness l;
    l.on_created(t0, 15s);
    l.on_closed();
    BOOST_TEST(!l.live());
    BOOST_TEST(!l.lost_reason().has_value());
    BOOST_TEST(!l.check(t0 + 1h).has_value()); // past the deadline, but closed is not lost
    l.on_invalidated();                         // a late 404 after close
    BOOST_TEST(!l.lost_reason().has_value());
}

BOOST_AUTO_TEST_CASE(closing_after_a_loss_clears_the_reason)
{
    session_liveness l;
    l.on_created(t0, 15s);
    l.on_invalidated();
    l.on_closed();
    BOOST_TEST(!l.live());
    BOOST_TEST(!l.lost_reason().has_value());
}

BOOST_AUTO_TEST_CASE(recreating_after_a_loss_starts_fresh)
{
    session_liveness l;
    l.on_created(t0, 15s);
    BOOST_REQUIRE(l.check(t0 + 20s).has_value());
    l.on_created(t0 + 30s, 15s);
    BOOST_TEST(l.live());
    BOOST_TEST(!l.lost_reason().has_value());
    BOOST_TEST(!l.check(t0 + 31s).has_value());
    BOOST_TEST(same(l.deadline(), t0 + 30s + 14250ms));
}

BOOST_AUTO_TEST_CASE(a_smaller_or_absurd_ttl_from_the_server_is_ignored)
{
    session_liveness l;
    l.on_created(t0, 15s);
    l.on_renewed(t0 + 1s, 1ms); // a hot loop and an instant loss if adopted
    BOOST_TEST((l.ttl() == 15s));
    l.on_renewed(t0 + 2s, std::chrono::hours(2562047)); // would overflow the deadline
    BOOST_TEST((l.ttl() == 15s));
    BOOST_TEST(same(l.deadline(), t0 + 2s + 15s - 750ms));
}

BOOST_AUTO_TEST_CASE(a_confirmation_window_shorter_than_the_ttl_bounds_deadline_and_renewals)
{
    // D2: a check-bound session with lock-delay 5 s and TTL 30 s is trusted 5 s after each success.
    session_liveness l;
    l.on_created(t0, 30s, 5s);
    BOOST_TEST((l.window() == 5s));
    BOOST_TEST(same(l.deadline(), t0 + 5s - 250ms));
    BOOST_TEST(same(l.next_renew(0.0), t0 + 2500ms));
    BOOST_TEST((l.retry_interval() == 1s));
    l.on_renewed(t0 + 2s, 30s);
    BOOST_TEST(same(l.deadline(), t0 + 2s + 5s - 250ms));
    BOOST_TEST(!l.check(t0 + 6s).has_value());
    BOOST_TEST((l.check(t0 + 6750ms) == errc::session_expired));
}

BOOST_AUTO_TEST_CASE(a_confirmation_window_longer_than_the_ttl_changes_nothing)
{
    session_liveness l;
    l.on_created(t0, 10s, 15s);
    BOOST_TEST((l.window() == 10s));
    BOOST_TEST(same(l.deadline(), t0 + 10s - 500ms));
}

BOOST_AUTO_TEST_SUITE_END()
