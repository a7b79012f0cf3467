// Tier A: include/colock/logger.hpp: levels filter, the sink receives lines, a throwing sink is contained.
#include <colock/logger.hpp>

#include <boost/test/unit_test.hpp>

#include <stdexcept>
#include <string>
#include <vector>

BOOST_AUTO_TEST_CASE(lines_below_the_minimum_level_are_dropped_and_the_rest_reach_the_sink)
{
    std::vector<std::string> lines;
    colock::logger log;
    log.min_level = colock::logger::level::info;
    log.sink = [&](colock::logger::level, std::string_view m) { lines.emplace_back(m); };
    log.log(colock::logger::level::debug, "hidden");
    log.log(colock::logger::level::warning, "shown");
    BOOST_TEST(lines == std::vector<std::string>{"shown"});
}

BOOST_AUTO_TEST_CASE(a_throwing_sink_does_not_throw_out_of_log)
{
    // colock logs from background loops: an exception there would end the loop silently.
    colock::logger log;
    int calls = 0;
    log.sink = [&](colock::logger::level, std::string_view) {
        ++calls;
        throw std::runtime_error("sink failed");
    };
    BOOST_CHECK_NO_THROW(log.log(colock::logger::level::error, "first"));
    BOOST_CHECK_NO_THROW(log.log(colock::logger::level::error, "second"));
    BOOST_TEST(calls == 2);
}
