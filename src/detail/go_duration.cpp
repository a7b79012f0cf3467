#include "detail/go_duration.hpp"

#include <cmath>
#include <cstdint>
#include <limits>

namespace colock::detail {

std::optional<std::chrono::nanoseconds> parse_go_duration(std::string_view s)
{
    if (s.empty())
        return std::nullopt;
    if (s == "0")
        return std::chrono::nanoseconds(0);
    // Work in long double nanoseconds with an explicit overflow bound: simple and exact enough for
    // the second-to-hour values Consul sends, and it refuses anything beyond int64 nanoseconds.
    long double total = 0;
    std::size_t i = 0;
    while (i < s.size()) {
        long double whole = 0;
        std::size_t digits = 0;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
            whole = whole * 10 + (s[i] - '0');
            ++i;
            ++digits;
            if (whole > 1e20L)
                return std::nullopt;
        }
        long double frac = 0, scale = 1;
        if (i < s.size() && s[i] == '.') {
            ++i;
            while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
                if (scale < 1e18L) {
                    frac = frac * 10 + (s[i] - '0');
                    scale *= 10;
                }
                ++i;
                ++digits;
            }
        }
        if (digits == 0)
            return std::nullopt;
        const std::size_t unit_start = i;
        while (i < s.size() && !(s[i] >= '0' && s[i] <= '9') && s[i] != '.')
            ++i;
        const std::string_view unit = s.substr(unit_start, i - unit_start);
        long double mult = 0;
        if (unit == "ns") mult = 1;
        else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") mult = 1e3L;
        else if (unit == "ms") mult = 1e6L;
        else if (unit == "s") mult = 1e9L;
        else if (unit == "m") mult = 60e9L;
        else if (unit == "h") mult = 3600e9L;
        else return std::nullopt;
        // Whole part times the unit plus the fraction's nanoseconds, truncated, as Go does.
        // (whole + frac / scale) * mult is inexact: "0.001s" came out as 999999ns.
        total += whole * mult + std::floor(frac * mult / scale);
        if (total > static_cast<long double>(std::numeric_limits<std::int64_t>::max()))
            return std::nullopt;
    }
    return std::chrono::nanoseconds(static_cast<std::int64_t>(total));
}

std::string format_go_duration(std::chrono::nanoseconds d)
{
    if (d.count() <= 0)
        return "0s";
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d);
    if (ms < d)
        ++ms; // round up: 1.5 ms -> 2ms, 0.2 ms -> 1ms
    return std::to_string(ms.count()) + "ms";
}

} // namespace colock::detail
