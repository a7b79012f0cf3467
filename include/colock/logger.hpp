#ifndef COLOCK_LOGGER_HPP
#define COLOCK_LOGGER_HPP

#include <functional>
#include <string_view>

namespace colock {

/// A log level plus a sink. Shared by a client and every recipe built on it.
/// colock logs state transitions (session created / renewed / lost, requests retried,
/// acquire attempts) with keys and session ids, never with ACL tokens.
struct logger {
    enum class level { debug, info, warning, error, disabled };

    level min_level = level::warning;
    /// Receives every line at or above min_level (from the client's strand, so possibly from any thread that
    /// runs its executor). Empty: lines go to stderr. An exception out of it is caught and dropped.
    std::function<void(level, std::string_view)> sink;

    bool enabled(level l) const noexcept { return l >= min_level && min_level != level::disabled; }
    void log(level l, std::string_view message) const;
};

std::string_view to_string(logger::level l) noexcept;

} // namespace colock

#endif
