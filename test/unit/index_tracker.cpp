// Tier A: include/colock/consul/index_tracker.hpp (Consul's blocking-query index rules, CONSUL.md section 4).
#include <colock/consul/index_tracker.hpp>

#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <limits>

namespace {

using colock::consul::index_tracker;

} // namespace

BOOST_AUTO_TEST_SUITE(test_index_tracker)

BOOST_AUTO_TEST_CASE(first_query_sends_index_0)
{
    const index_tracker t;
    BOOST_TEST(t.next_index() == 0u);
    BOOST_TEST(!t.regressed());
    BOOST_TEST(t.last_index() == 0u);
}

BOOST_AUTO_TEST_CASE(first_reply_is_always_a_change)
{
    index_tracker t;
    BOOST_TEST(t.on_reply(42));
    BOOST_TEST(!t.regressed());
}

BOOST_AUTO_TEST_CASE(each_query_sends_the_previous_reply_index)
{
    index_tracker t;
    (void)t.on_reply(10);
    BOOST_TEST(t.next_index() == 10u);
    (void)t.on_reply(17);
    BOOST_TEST(t.next_index() == 17u);
    BOOST_TEST(t.last_index() == 17u);
}

BOOST_AUTO_TEST_CASE(same_index_again_is_not_a_change)
{
    index_tracker t;
    BOOST_TEST(t.on_reply(10));
    BOOST_TEST(!t.on_reply(10));
    BOOST_TEST(!t.regressed());
    BOOST_TEST(t.next_index() == 10u);
}

BOOST_AUTO_TEST_CASE(higher_index_is_a_change_without_regression)
{
    index_tracker t;
    (void)t.on_reply(10);
    BOOST_TEST(t.on_reply(11));
    BOOST_TEST(!t.regressed());
}

BOOST_AUTO_TEST_CASE(lower_index_is_adopted_and_reported_as_changed_and_regressed)
{
    index_tracker t;
    (void)t.on_reply(100);
    BOOST_TEST(t.on_reply(7));
    BOOST_TEST(t.regressed());
    BOOST_TEST(t.next_index() == 7u);
    BOOST_TEST(t.last_index() == 7u);
}

BOOST_AUTO_TEST_CASE(regressed_flag_clears_on_the_next_non_regressing_reply)
{
    index_tracker t;
    (void)t.on_reply(100);
    (void)t.on_reply(7);
    BOOST_TEST(t.regressed());
    BOOST_TEST(!t.on_reply(7));
    BOOST_TEST(!t.regressed());
    (void)t.on_reply(8);
    BOOST_TEST(!t.regressed());
}

BOOST_AUTO_TEST_CASE(reply_index_0_after_a_round_makes_the_next_query_send_1)
{
    index_tracker t;
    (void)t.on_reply(5);
    BOOST_TEST(t.on_reply(0)); // went backwards: a change
    BOOST_TEST(t.regressed());
    BOOST_TEST(t.next_index() == 1u);
    BOOST_TEST(!t.on_reply(0)); // the buggy server repeats 0: still never send 0
    BOOST_TEST(t.next_index() == 1u);
}

BOOST_AUTO_TEST_CASE(a_first_reply_with_index_0_still_makes_the_next_query_block)
{
    index_tracker t;
    BOOST_TEST(t.on_reply(0));
    BOOST_TEST(!t.regressed());
    BOOST_TEST(t.next_index() == 1u);
}

BOOST_AUTO_TEST_CASE(the_full_uint64_range_is_kept)
{
    index_tracker t;
    constexpr auto max = std::numeric_limits<std::uint64_t>::max();
    (void)t.on_reply(max);
    BOOST_TEST(t.next_index() == max);
    BOOST_TEST(!t.on_reply(max));
}

BOOST_AUTO_TEST_CASE(reset_forgets_everything_and_the_next_query_is_a_plain_read)
{
    index_tracker t;
    (void)t.on_reply(100);
    (void)t.on_reply(3);
    BOOST_TEST(t.regressed());
    t.reset();
    BOOST_TEST(t.next_index() == 0u);
    BOOST_TEST(t.last_index() == 0u);
    BOOST_TEST(!t.regressed());
    BOOST_TEST(t.on_reply(3)); // first reply after reset: a change even with the same index
    BOOST_TEST(!t.regressed());
}

BOOST_AUTO_TEST_SUITE_END()
