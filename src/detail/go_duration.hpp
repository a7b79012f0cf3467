#ifndef COLOCK_SRC_DETAIL_GO_DURATION_HPP
#define COLOCK_SRC_DETAIL_GO_DURATION_HPP

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace colock::detail {

/// Parses a Go duration string as Consul writes them ("15s", "1m30s", "250ms", "1.5h", "0s").
/// Units: ns, us, µs, ms, s, m, h. No sign is accepted (Consul's TTLs are never negative).
/// Empty on malformed input or overflow.
std::optional<std::chrono::nanoseconds> parse_go_duration(std::string_view text);

/// Formats a duration for Consul: whole milliseconds as "<n>ms", as Go's client does; a positive
/// duration under 1 ms is rounded up to "1ms" so it never reads as "use the default".
std::string format_go_duration(std::chrono::nanoseconds d);

} // namespace colock::detail

#endif
