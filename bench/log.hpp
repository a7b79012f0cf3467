#ifndef COLOCK_BENCH_LOG_HPP
#define COLOCK_BENCH_LOG_HPP

// colock's log for the benchmark's clients: errors only unless COLOCK_BENCH_LOG says otherwise
// (debug, info, warning), so a run's output stays a table. Lines carry the pid and a monotonic
// stamp, since the handoff peer writes to the same terminal.

#include "stats.hpp"

#include <colock/logger.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <unistd.h>

namespace colock::bench {

inline colock::logger bench_logger()
{
    colock::logger log;
    log.min_level = colock::logger::level::error;
    if (const char* v = std::getenv("COLOCK_BENCH_LOG"); v != nullptr) {
        std::string s = v;
        if (s == "debug") {
            log.min_level = colock::logger::level::debug;
        } else if (s == "info") {
            log.min_level = colock::logger::level::info;
        } else if (s == "warning") {
            log.min_level = colock::logger::level::warning;
        }
    }
    log.sink = [](colock::logger::level l, std::string_view line) {
        std::fprintf(stderr, "[%d %.6f %s] %.*s\n", int(::getpid()), double(monotonic_ns()) / 1e9,
                     std::string(colock::to_string(l)).c_str(), int(line.size()), line.data());
    };
    return log;
}

} // namespace colock::bench

#endif
