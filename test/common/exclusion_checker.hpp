#ifndef COLOCK_TEST_COMMON_EXCLUSION_CHECKER_HPP
#define COLOCK_TEST_COMMON_EXCLUSION_CHECKER_HPP

// Checks a shared history of critical sections written by several processes (colock and Consul's Go
// client): one JSON object per line, {"who":"go-1","ev":"enter"|"exit","t":<unix ns>[,"token":<n>]}.
// Each contender appends its "enter" line after acquiring and its "exit" line before releasing, each with
// one write() on an O_APPEND descriptor, so the file's order is the real order of those moments and a
// correct lock never shows more than `limit` contenders between their enter and exit.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace colock::test {

/// What a history showed. ok() when nothing was violated.
struct exclusion_report {
    std::size_t lines = 0;
    std::map<std::string, std::size_t> acquisitions; ///< enter lines per contender
    std::size_t max_concurrent = 0;                  ///< most contenders inside at once
    std::vector<std::string> order;                  ///< who entered, in history order
    std::vector<std::string> violations;             ///< each one names its line

    bool ok() const noexcept { return violations.empty(); }
    std::size_t total_acquisitions() const noexcept;
    /// How often the next contender to enter was another than the previous one, counting only changes
    /// between groups, where a contender's group is its name up to the first '-' ("go-1" is in "go").
    std::size_t handoffs_between_groups() const;
    /// One line for a test log: lines, acquisitions per contender, max concurrent, violations.
    std::string summary() const;
};

/// Reads the history line by line and checks, for a lock (limit 1) or a semaphore (limit N):
/// - at most `limit` contenders are inside (between their enter and exit) at any line;
/// - a contender enters only when outside and exits only when inside; at the end nobody is inside;
/// - tokens (on lines that carry one) are unique; with limit 1 they also rise strictly from one
///   acquisition to the next, as fencing tokens of successive holders must;
/// - every line is a JSON object with a non-empty string "who", "ev" enter or exit, an integer "t",
///   and, if present, a positive integer "token".
class exclusion_checker {
public:
    explicit exclusion_checker(std::size_t limit);

    /// One history line (without its newline); blank lines are ignored.
    void feed(std::string_view line);
    /// Every line of `text`.
    void feed_text(std::string_view text);
    /// The report so far, with anyone still inside counted as a violation.
    exclusion_report finish() const;

    /// Reads `path` whole and checks it; a file that cannot be read is a violation.
    static exclusion_report check_file(const std::string& path, std::size_t limit);

private:
    void violation(std::string what);

    std::size_t limit_;
    exclusion_report report_;
    std::map<std::string, std::size_t> inside_; ///< who is inside, and since which line
    std::uint64_t last_token_ = 0;
    std::map<std::uint64_t, std::size_t> token_lines_; ///< token, and the line that first carried it
};

} // namespace colock::test

#endif
