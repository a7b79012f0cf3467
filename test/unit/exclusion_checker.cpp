// Tier A: test/common/exclusion_checker.hpp, the checker of the interoperability tests' shared histories.
// The negative cases are the positive controls: a checker that passes everything would pass them too.
#include "exclusion_checker.hpp"
#include "history_file.hpp"

#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <string_view>
#include <unistd.h>

namespace {

using colock::test::exclusion_checker;
using colock::test::exclusion_report;
using colock::test::history_file;

// A history line at time t (the checker goes by line order, not by t).
std::string enter(std::string_view who, std::uint64_t t, std::uint64_t token = 0)
{
    return history_file::line(who, "enter", t, token);
}
std::string exit(std::string_view who, std::uint64_t t) { return history_file::line(who, "exit", t); }

exclusion_report check(const std::string& text, std::size_t limit)
{
    exclusion_checker c(limit);
    c.feed_text(text);
    return c.finish();
}

// Some violation mentions `what`.
bool flags(const exclusion_report& r, std::string_view what)
{
    for (const auto& v : r.violations)
        if (v.find(what) != std::string::npos)
            return true;
    return false;
}

} // namespace

BOOST_AUTO_TEST_SUITE(test_exclusion_checker)

BOOST_AUTO_TEST_CASE(alternating_lock_history_is_clean_and_counted)
{
    const auto r = check(enter("go-1", 1, 10) + exit("go-1", 2) + enter("colock-0", 3, 12) + exit("colock-0", 4) +
                             enter("colock-0", 5, 15) + exit("colock-0", 6) + enter("go-2", 7, 20) + exit("go-2", 8),
                         1);
    BOOST_TEST(r.ok(), r.summary());
    BOOST_TEST(r.lines == 8u);
    BOOST_TEST(r.total_acquisitions() == 4u);
    BOOST_TEST(r.acquisitions.at("go-1") == 1u);
    BOOST_TEST(r.acquisitions.at("colock-0") == 2u);
    BOOST_TEST(r.acquisitions.at("go-2") == 1u);
    BOOST_TEST(r.max_concurrent == 1u);
    BOOST_TEST(r.handoffs_between_groups() == 2u); // go -> colock, colock -> go
    BOOST_TEST(r.order.size() == 4u);
}

BOOST_AUTO_TEST_CASE(overlapping_holders_of_a_lock_are_flagged)
{
    // colock-0 enters while go-1 is inside: the positive control of every interop lock run.
    const auto r = check(enter("go-1", 1) + enter("colock-0", 2) + exit("go-1", 3) + exit("colock-0", 4), 1);
    BOOST_TEST(!r.ok());
    BOOST_TEST(r.max_concurrent == 2u);
    BOOST_TEST(r.violations.size() == 1u, r.summary());
    BOOST_TEST(flags(r, "line 2: 2 inside at once, limit 1"), r.summary());
    BOOST_TEST(flags(r, "go-1 (since line 1)"), r.summary());
}

BOOST_AUTO_TEST_CASE(an_overlap_is_flagged_even_when_the_timestamps_say_otherwise)
{
    // Line order is the truth (one write() per line, O_APPEND); clocks of processes may disagree.
    const auto r = check(enter("go-1", 100) + enter("colock-0", 50) + exit("colock-0", 60) + exit("go-1", 200), 1);
    BOOST_TEST(!r.ok());
    BOOST_TEST(r.max_concurrent == 2u);
}

BOOST_AUTO_TEST_CASE(semaphore_history_within_its_limit_is_clean)
{
    const auto r = check(enter("go-1", 1) + enter("colock-0", 2) + exit("go-1", 3) + enter("go-2", 4) +
                             exit("colock-0", 5) + exit("go-2", 6),
                         2);
    BOOST_TEST(r.ok(), r.summary());
    BOOST_TEST(r.max_concurrent == 2u);
}

BOOST_AUTO_TEST_CASE(a_third_holder_of_a_two_slot_semaphore_is_flagged)
{
    const auto r = check(enter("go-1", 1) + enter("colock-0", 2) + enter("go-2", 3) + exit("go-1", 4) +
                             exit("colock-0", 5) + exit("go-2", 6),
                         2);
    BOOST_TEST(!r.ok());
    BOOST_TEST(r.max_concurrent == 3u);
    BOOST_TEST(flags(r, "line 3: 3 inside at once, limit 2"), r.summary());
}

BOOST_AUTO_TEST_CASE(exit_without_enter_and_double_enter_are_flagged)
{
    const auto r = check(exit("go-1", 1) + enter("colock-0", 2) + enter("colock-0", 3) + exit("colock-0", 4), 1);
    BOOST_TEST(r.violations.size() == 2u, r.summary());
    BOOST_TEST(flags(r, "line 1: go-1 exits without being inside"), r.summary());
    BOOST_TEST(flags(r, "line 3: colock-0 enters again while inside since line 2"), r.summary());
}

BOOST_AUTO_TEST_CASE(exit_by_another_contender_does_not_end_a_hold)
{
    // go-2's exit cannot close go-1's critical section: go-1 is still inside when colock-0 enters.
    const auto r = check(enter("go-1", 1) + exit("go-2", 2) + enter("colock-0", 3) + exit("colock-0", 4), 1);
    BOOST_TEST(flags(r, "go-2 exits without being inside"), r.summary());
    BOOST_TEST(flags(r, "2 inside at once"), r.summary());
    BOOST_TEST(flags(r, "end of history: go-1 is still inside since line 1"), r.summary());
}

BOOST_AUTO_TEST_CASE(a_contender_still_inside_at_the_end_is_flagged)
{
    const auto r = check(enter("go-1", 1), 1);
    BOOST_TEST(!r.ok());
    BOOST_TEST(flags(r, "end of history: go-1 is still inside"), r.summary());
}

BOOST_AUTO_TEST_CASE(lock_tokens_that_do_not_rise_are_flagged)
{
    const auto r = check(enter("go-1", 1, 20) + exit("go-1", 2) + enter("colock-0", 3, 15) + exit("colock-0", 4) +
                             enter("go-2", 5, 15) + exit("go-2", 6) + enter("go-1", 7, 30) + exit("go-1", 8),
                         1);
    BOOST_TEST(r.violations.size() == 2u, r.summary());
    BOOST_TEST(flags(r, "line 3: colock-0 enters with token 15, not above the previous 20"), r.summary());
    BOOST_TEST(flags(r, "line 5: go-2 enters with token 15, already used on line 3"), r.summary());
}

BOOST_AUTO_TEST_CASE(lines_without_tokens_do_not_break_the_token_order)
{
    const auto r =
        check(enter("go-1", 1, 10) + exit("go-1", 2) + enter("go-2", 3) + exit("go-2", 4) + enter("colock-0", 5, 11) +
                  exit("colock-0", 6),
              1);
    BOOST_TEST(r.ok(), r.summary());
}

BOOST_AUTO_TEST_CASE(semaphore_tokens_need_only_be_unique)
{
    // Slots granted concurrently may write their enter lines in either order.
    const auto clean = check(enter("colock-0", 1, 12) + enter("colock-1", 2, 10) + exit("colock-0", 3) +
                                 exit("colock-1", 4),
                             2);
    BOOST_TEST(clean.ok(), clean.summary());
    const auto reused = check(enter("colock-0", 1, 12) + exit("colock-0", 2) + enter("colock-1", 3, 12) +
                                  exit("colock-1", 4),
                              2);
    BOOST_TEST(flags(reused, "token 12, already used on line 1"), reused.summary());
}

BOOST_AUTO_TEST_CASE(malformed_lines_are_flagged_and_blank_lines_ignored)
{
    const auto r = check(std::string("not json\n") + "\n" + R"({"who":"go-1","ev":"enter"})" + "\n" +
                             R"({"who":"","ev":"enter","t":1})" + "\n" + R"({"who":"go-1","ev":"leave","t":1})" +
                             "\n" + R"({"who":"go-1","ev":"enter","t":1,"token":-3})" + "\n" +
                             R"({"who":"go-1","ev":"enter","t":1,"token":0})" + "\n" + "[1,2]\n",
                         1);
    BOOST_TEST(r.lines == 7u);
    BOOST_TEST(r.violations.size() == 7u, r.summary());
    BOOST_TEST(r.total_acquisitions() == 0u);
    BOOST_TEST(flags(r, "neither enter nor exit"), r.summary());
    BOOST_TEST(flags(r, "not a positive integer"), r.summary());
}

BOOST_AUTO_TEST_CASE(history_file_lines_from_several_writers_are_checked_from_disk)
{
    char path[] = "/tmp/colock-history-XXXXXX";
    const int fd = ::mkstemp(path);
    BOOST_TEST_REQUIRE(fd >= 0);
    ::close(fd);
    {
        history_file a(path);
        history_file b(path); // a second descriptor, as a second process would have
        a.enter("go-1", 7);
        a.exit("go-1");
        b.enter("colock-0", 9);
        a.enter("go-2"); // overlaps colock-0
        a.exit("go-2");
        b.exit("colock-0");
    }
    const auto r = exclusion_checker::check_file(path, 1);
    BOOST_TEST(r.lines == 6u);
    BOOST_TEST(r.max_concurrent == 2u);
    BOOST_TEST(r.violations.size() == 1u, r.summary());
    {
        std::ofstream torn(path, std::ios::app);
        torn << R"({"who":"go-1","ev":"ent)";
    }
    const auto t = exclusion_checker::check_file(path, 1);
    BOOST_TEST(flags(t, "torn last line"), t.summary());
    std::remove(path);
    const auto missing = exclusion_checker::check_file(path, 1);
    BOOST_TEST(flags(missing, "cannot read the history"), missing.summary());
}

BOOST_AUTO_TEST_SUITE_END()
