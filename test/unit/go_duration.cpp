// Tier A: src/detail/go_duration.hpp. Expectations follow Go's time.ParseDuration, except that colock accepts no sign
// (documented: Consul's TTLs and lock delays are never negative).
#include "detail/go_duration.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

namespace {

using colock::detail::format_go_duration;
using colock::detail::parse_go_duration;
using namespace std::chrono_literals;
using std::chrono::nanoseconds;

// The parsed value in nanoseconds, or -1 when rejected (no valid input parses to a negative value).
std::int64_t ns(std::string_view text)
{
    const auto d = parse_go_duration(text);
    return d ? d->count() : -1;
}

} // namespace

BOOST_AUTO_TEST_SUITE(test_go_duration)

BOOST_AUTO_TEST_CASE(parse_reads_the_durations_consul_writes)
{
    BOOST_TEST(ns("15s") == nanoseconds(15s).count());
    BOOST_TEST(ns("1m30s") == nanoseconds(90s).count());
    BOOST_TEST(ns("250ms") == nanoseconds(250ms).count());
    BOOST_TEST(ns("1.5h") == nanoseconds(5400s).count());
    BOOST_TEST(ns("0s") == 0);
    BOOST_TEST(ns("0") == 0);
    BOOST_TEST(ns("24h") == nanoseconds(24h).count());
    BOOST_TEST(ns("15000ms") == nanoseconds(15s).count());
}

BOOST_AUTO_TEST_CASE(parse_accepts_every_go_unit_including_both_micro_signs)
{
    BOOST_TEST(ns("100ns") == 100);
    BOOST_TEST(ns("1us") == 1000);
    BOOST_TEST(ns("1\xC2\xB5s") == 1000); // U+00B5 MICRO SIGN
    BOOST_TEST(ns("1\xCE\xBCs") == 1000); // U+03BC GREEK SMALL LETTER MU
    BOOST_TEST(ns("1ms") == 1'000'000);
    BOOST_TEST(ns("1s") == 1'000'000'000);
    BOOST_TEST(ns("1m") == 60'000'000'000);
    BOOST_TEST(ns("1h") == 3'600'000'000'000);
    BOOST_TEST(ns("1h2m3s4ms5us6ns") == 3'723'004'005'006);
}

BOOST_AUTO_TEST_CASE(parse_reads_fractions_exactly)
{
    BOOST_TEST(ns("0.001s") == 1'000'000); // was 999999 before the fix in go_duration.cpp
    BOOST_TEST(ns("10.001s") == 10'001'000'000);
    BOOST_TEST(ns("0.1s") == 100'000'000);
    BOOST_TEST(ns("2.3ms") == 2'300'000);
    BOOST_TEST(ns("1.0000001s") == 1'000'000'100);
    BOOST_TEST(ns("3.007000us") == 3007);
    BOOST_TEST(ns("5.1m") == 306'000'000'000);
    BOOST_TEST(ns("1.5ns") == 1);          // Go truncates below a nanosecond
    BOOST_TEST(ns("0.0000000001s") == 0);  // as Go
}

BOOST_AUTO_TEST_CASE(parse_accepts_a_fraction_with_digits_on_one_side_only_as_go_does)
{
    BOOST_TEST(ns("1.s") == 1'000'000'000);
    BOOST_TEST(ns(".5s") == 500'000'000);
    BOOST_TEST(ns("00s") == 0);
}

BOOST_AUTO_TEST_CASE(parse_rejects_garbage)
{
    BOOST_TEST(ns("") == -1);
    BOOST_TEST(ns("s") == -1);
    BOOST_TEST(ns("10") == -1); // missing unit (only a bare "0" may omit it)
    BOOST_TEST(ns("1x") == -1);
    BOOST_TEST(ns("1ss") == -1);
    BOOST_TEST(ns(".s") == -1);
    BOOST_TEST(ns(".") == -1);
    BOOST_TEST(ns("1.2.3s") == -1);
    BOOST_TEST(ns("1e3s") == -1);
    BOOST_TEST(ns(" 1s") == -1);
    BOOST_TEST(ns("1s ") == -1);
    BOOST_TEST(ns("1s2") == -1);
    BOOST_TEST(ns("1S") == -1);
    BOOST_TEST(ns("1sec") == -1);
    BOOST_TEST(ns("1\xB5s") == -1); // a lone Latin-1 byte is not a micro sign
}

// Go accepts a sign ("-1s", "+1s", "-0s"); colock deliberately does not (header: Consul's TTLs are never negative).
BOOST_AUTO_TEST_CASE(parse_rejects_any_sign)
{
    BOOST_TEST(ns("-1s") == -1);
    BOOST_TEST(ns("+1s") == -1);
    BOOST_TEST(ns("-0s") == -1);
}

BOOST_AUTO_TEST_CASE(parse_rejects_overflow_beyond_int64_nanoseconds)
{
    BOOST_TEST(ns("9223372036854775807ns") == std::numeric_limits<std::int64_t>::max());
    BOOST_TEST(ns("9223372036854775808ns") == -1);
    BOOST_TEST(ns("2562047h") == 2562047LL * 3'600'000'000'000LL);
    BOOST_TEST(ns("2562048h") == -1);
    BOOST_TEST(ns("99999999999999999999999s") == -1);
    BOOST_TEST(ns("2562047h2562047h") == -1); // each part fits, the sum does not
}

BOOST_AUTO_TEST_CASE(format_writes_zero_and_negative_as_0s)
{
    BOOST_TEST(format_go_duration(0ns) == "0s");
    BOOST_TEST(format_go_duration(-5s) == "0s");
}

BOOST_AUTO_TEST_CASE(format_writes_whole_milliseconds)
{
    BOOST_TEST(format_go_duration(1500ms) == "1500ms");
    BOOST_TEST(format_go_duration(1s) == "1000ms");
    BOOST_TEST(format_go_duration(15s) == "15000ms");
    BOOST_TEST(format_go_duration(1ms) == "1ms");
}

BOOST_AUTO_TEST_CASE(format_rounds_sub_millisecond_parts_up)
{
    BOOST_TEST(format_go_duration(200us) == "1ms");
    BOOST_TEST(format_go_duration(1ns) == "1ms");
    BOOST_TEST(format_go_duration(1500us) == "2ms");
    BOOST_TEST(format_go_duration(1000001ns) == "2ms");
}

BOOST_AUTO_TEST_CASE(format_output_parses_back_to_the_rounded_up_value)
{
    for (const nanoseconds d : {nanoseconds(1), nanoseconds(999'999), nanoseconds(1'000'000), nanoseconds(15'000'000'001),
                                nanoseconds(3'600'000'000'000)}) {
        const auto parsed = parse_go_duration(format_go_duration(d));
        BOOST_REQUIRE(parsed.has_value());
        BOOST_TEST(parsed->count() >= d.count());
        BOOST_TEST(parsed->count() - d.count() < 1'000'000);
    }
}

BOOST_AUTO_TEST_SUITE_END()
