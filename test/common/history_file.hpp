#ifndef COLOCK_TEST_COMMON_HISTORY_FILE_HPP
#define COLOCK_TEST_COMMON_HISTORY_FILE_HPP

// The writing side of a shared critical-section history (exclusion_checker.hpp reads it): each line goes
// out in one write() on an O_APPEND descriptor, so lines of several processes never interleave and the
// file's order is the order of the writes.

#include <cstdint>
#include <string>
#include <string_view>

namespace colock::test {

class history_file {
public:
    /// Opens (creating) `path` for appending; throws std::system_error when it cannot.
    explicit history_file(const std::string& path);
    history_file(const history_file&) = delete;
    history_file& operator=(const history_file&) = delete;
    ~history_file();

    /// Appends {"who":..,"ev":"enter","t":<unix ns>[,"token":n]} (no token when 0); call it after acquiring.
    void enter(std::string_view who, std::uint64_t token = 0);
    /// Appends {"who":..,"ev":"exit","t":<unix ns>}; call it before releasing.
    void exit(std::string_view who);

    /// One history line, with its newline (`who` must need no JSON escaping).
    static std::string line(std::string_view who, std::string_view ev, std::uint64_t t_ns, std::uint64_t token = 0);

private:
    void append(const std::string& line);

    int fd_ = -1;
};

} // namespace colock::test

#endif
