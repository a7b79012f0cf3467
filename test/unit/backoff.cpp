// Tier A: src/detail/backoff.hpp (capped exponential backoff with full jitter, token bucket). Time points are
// synthetic; nothing sleeps.
#include "detail/backoff.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>

namespace {

using colock::detail::backoff;
using colock::detail::token_bucket;
using namespace std::chrono_literals;
using time_point = token_bucket::time_point;
using std::chrono::milliseconds;

const time_point t0 = time_point{} + 1000h; // any fixed point; the bucket only looks at differences

} // namespace

BOOST_AUTO_TEST_SUITE(test_backoff)

BOOST_AUTO_TEST_CASE(backoff_ceiling_starts_at_initial_doubles_and_caps_at_max)
{
    backoff b(100ms, 1000ms);
    BOOST_TEST(b.attempts() == 0u);
    const milliseconds expected[] = {100ms, 200ms, 400ms, 800ms, 1000ms, 1000ms, 1000ms};
    for (const auto e : expected) {
        BOOST_TEST(b.ceiling().count() == e.count());
        (void)b.next(0.5);
    }
    BOOST_TEST(b.attempts() == 7u);
}

BOOST_AUTO_TEST_CASE(backoff_ceiling_does_not_advance_the_attempt_counter)
{
    backoff b(50ms, 2s);
    BOOST_TEST(b.ceiling().count() == 50);
    BOOST_TEST(b.ceiling().count() == 50);
    BOOST_TEST(b.attempts() == 0u);
}

BOOST_AUTO_TEST_CASE(backoff_ceiling_stays_at_max_after_many_attempts_without_overflow)
{
    backoff b(1ms, 180s);
    for (int i = 0; i < 10000; ++i)
        (void)b.next(0.0);
    BOOST_TEST(b.ceiling().count() == milliseconds(180s).count());
    BOOST_TEST(b.next(0.5).count() == 90'000);
}

BOOST_AUTO_TEST_CASE(backoff_initial_above_max_is_capped)
{
    backoff b(5s, 1s);
    BOOST_TEST(b.ceiling().count() == 1000);
    BOOST_TEST(b.next(0.5).count() == 500);
}

BOOST_AUTO_TEST_CASE(backoff_next_scales_the_ceiling_by_the_random_draw)
{
    backoff b(1000ms, 60s);
    BOOST_TEST(b.next(0.0).count() == 0);      // ceiling 1000
    BOOST_TEST(b.next(0.5).count() == 1000);   // ceiling 2000
    BOOST_TEST(b.next(0.25).count() == 1000);  // ceiling 4000
    BOOST_TEST(b.next(0.999).count() == 7992); // ceiling 8000, truncated
}

BOOST_AUTO_TEST_CASE(backoff_next_clamps_a_draw_outside_0_1)
{
    backoff b(1000ms, 60s);
    BOOST_TEST(b.next(-3.0).count() == 0);
    BOOST_TEST(b.next(7.0).count() == 2000);
}

BOOST_AUTO_TEST_CASE(backoff_reset_restarts_from_initial)
{
    backoff b(100ms, 10s);
    for (int i = 0; i < 5; ++i)
        (void)b.next(0.5);
    BOOST_TEST(b.ceiling().count() == 3200);
    b.reset();
    BOOST_TEST(b.attempts() == 0u);
    BOOST_TEST(b.ceiling().count() == 100);
    BOOST_TEST(b.next(1.0).count() == 100);
}

BOOST_AUTO_TEST_CASE(unit_random_draws_in_the_half_open_unit_interval)
{
    for (int i = 0; i < 10000; ++i) {
        const double r = colock::detail::unit_random();
        BOOST_TEST_REQUIRE(r >= 0.0);
        BOOST_TEST_REQUIRE(r < 1.0);
    }
}

BOOST_AUTO_TEST_CASE(token_bucket_allows_a_burst_then_refuses_until_wait_until)
{
    token_bucket tb(2, 15s, t0);
    BOOST_TEST(tb.try_take(t0));
    BOOST_TEST(tb.try_take(t0));
    BOOST_TEST(!tb.try_take(t0));
    BOOST_TEST((tb.wait_until() == t0 + 15s));
    BOOST_TEST(!tb.try_take(t0 + 15s - 1ms));
    BOOST_TEST(tb.try_take(tb.wait_until()));
    BOOST_TEST(!tb.try_take(t0 + 15s));
    BOOST_TEST((tb.wait_until() == t0 + 30s));
}

BOOST_AUTO_TEST_CASE(token_bucket_refill_clock_starts_at_the_first_take_from_a_full_bucket)
{
    token_bucket tb(2, 15s, t0);
    const auto later = t0 + 100s;
    BOOST_TEST(tb.try_take(later));
    BOOST_TEST(tb.try_take(later));
    BOOST_TEST(!tb.try_take(later + 1s));
    BOOST_TEST((tb.wait_until() == later + 15s));
}

BOOST_AUTO_TEST_CASE(token_bucket_refills_one_token_per_interval_and_keeps_partial_progress)
{
    token_bucket tb(3, 10s, t0);
    for (int i = 0; i < 3; ++i)
        BOOST_TEST(tb.try_take(t0));
    BOOST_TEST(!tb.try_take(t0));
    // 25 s later: two tokens earned, the remaining 5 s count towards the third.
    BOOST_TEST(tb.try_take(t0 + 25s));
    BOOST_TEST(tb.try_take(t0 + 25s));
    BOOST_TEST(!tb.try_take(t0 + 25s));
    BOOST_TEST((tb.wait_until() == t0 + 30s));
    BOOST_TEST(tb.try_take(t0 + 30s));
}

BOOST_AUTO_TEST_CASE(token_bucket_never_holds_more_than_burst)
{
    token_bucket tb(2, 1s, t0);
    BOOST_TEST(tb.try_take(t0));
    const auto much_later = t0 + 24h;
    int taken = 0;
    for (int i = 0; i < 100; ++i)
        taken += tb.try_take(much_later) ? 1 : 0;
    BOOST_TEST(taken == 2);
}

BOOST_AUTO_TEST_CASE(token_bucket_limits_a_hot_loop_to_burst_plus_one_per_interval)
{
    // A blocking query answering at once, polled every 10 ms for 60 s: 2 quick, then one per 15 s.
    token_bucket tb(2, 15s, t0);
    int taken = 0;
    for (int i = 0; i <= 6000; ++i)
        taken += tb.try_take(t0 + i * 10ms) ? 1 : 0;
    BOOST_TEST(taken == 2 + 4);
}

BOOST_AUTO_TEST_CASE(token_bucket_ignores_time_going_backwards)
{
    token_bucket tb(1, 10s, t0);
    BOOST_TEST(tb.try_take(t0));
    BOOST_TEST(!tb.try_take(t0 - 1h));
    BOOST_TEST(!tb.try_take(t0 + 9s));
    BOOST_TEST(tb.try_take(t0 + 10s));
}

BOOST_AUTO_TEST_CASE(token_bucket_with_zero_burst_allows_one)
{
    token_bucket tb(0, 10s, t0);
    BOOST_TEST(tb.try_take(t0));
    BOOST_TEST(!tb.try_take(t0));
}

BOOST_AUTO_TEST_CASE(token_bucket_with_zero_refill_never_limits)
{
    token_bucket tb(1, 0ms, t0);
    for (int i = 0; i < 100; ++i)
        BOOST_TEST_REQUIRE(tb.try_take(t0));
}

BOOST_AUTO_TEST_SUITE_END()
