#ifndef COLOCK_BENCH_STATS_HPP
#define COLOCK_BENCH_STATS_HPP

// Latency samples, process CPU time and memory readings for the benchmark.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

namespace colock::bench {

using clock_type = std::chrono::steady_clock;

// CLOCK_MONOTONIC in nanoseconds: the clock two processes on one host share (steady_clock is the
// same clock on Linux, but this says so).
inline std::int64_t monotonic_ns()
{
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Durations of one kind of operation, in nanoseconds, plus the wall time they were measured over.
struct samples {
    std::vector<std::int64_t> ns;
    std::int64_t busy_ns = 0; // sum of the measured intervals

    void add(std::int64_t d)
    {
        ns.push_back(d);
        busy_ns += d;
    }
    void add(clock_type::duration d) { add(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()); }
    bool empty() const { return ns.empty(); }
    std::size_t count() const { return ns.size(); }

    // Nearest-rank percentile in microseconds (p in [0, 1]); 0 when empty.
    double percentile_us(double p) const
    {
        if (ns.empty()) {
            return 0;
        }
        std::vector<std::int64_t> sorted = ns;
        std::sort(sorted.begin(), sorted.end());
        std::size_t rank = std::size_t(p * double(sorted.size()));
        if (rank >= sorted.size()) {
            rank = sorted.size() - 1;
        }
        return double(sorted[rank]) / 1e3;
    }
    double p50_us() const { return percentile_us(0.50); }
    double p99_us() const { return percentile_us(0.99); }
    double max_us() const { return percentile_us(1.0); }
    double mean_us() const { return ns.empty() ? 0 : double(busy_ns) / double(ns.size()) / 1e3; }
    // Back-to-back rate: operations per second of measured time.
    double per_second() const { return busy_ns == 0 ? 0 : double(ns.size()) * 1e9 / double(busy_ns); }
};

// User + system CPU time of this process, in nanoseconds.
inline std::int64_t process_cpu_ns()
{
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    auto ns = [](const timeval& tv) {
        return std::int64_t(tv.tv_sec) * 1'000'000'000 + std::int64_t(tv.tv_usec) * 1000;
    };
    return ns(ru.ru_utime) + ns(ru.ru_stime);
}

// User + system CPU time of another process (from /proc/<pid>/stat, clock-tick resolution); -1 if unreadable.
inline std::int64_t other_process_cpu_ns(pid_t pid)
{
    if (pid <= 0) {
        return -1;
    }
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // Fields after the command name, which is in parentheses and may contain spaces.
    auto close = text.rfind(')');
    if (close == std::string::npos) {
        return -1;
    }
    unsigned long long utime = 0, stime = 0;
    // After ")": state(3) ... utime is field 14, stime 15.
    if (std::sscanf(text.c_str() + close + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                    &stime) != 2) {
        return -1;
    }
    long hz = ::sysconf(_SC_CLK_TCK);
    return std::int64_t((utime + stime) * (1'000'000'000ULL / std::uint64_t(hz > 0 ? hz : 100)));
}

// Resident set size in bytes (/proc/self/statm, second field).
inline std::int64_t rss_bytes()
{
    std::ifstream in("/proc/self/statm");
    std::int64_t size = 0, resident = 0;
    in >> size >> resident;
    return resident * ::sysconf(_SC_PAGESIZE);
}

// Bytes of heap in use (allocated, not free) over every malloc arena.
inline std::int64_t heap_in_use_bytes()
{
    struct mallinfo2 mi = ::mallinfo2();
    return std::int64_t(mi.uordblks) + std::int64_t(mi.hblkhd);
}

} // namespace colock::bench

#endif
