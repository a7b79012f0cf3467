#ifndef COLOCK_SRC_DETAIL_BACKOFF_HPP
#define COLOCK_SRC_DETAIL_BACKOFF_HPP

#include <chrono>
#include <cstdint>

namespace colock::detail {

/// Capped exponential backoff with full jitter: attempt n waits a uniform random time in
/// [0, min(max, initial * 2^n)]. The random draw is passed in (a value in [0, 1)) so the
/// decision is testable without a random source.
class backoff {
public:
    backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max) noexcept : initial_(initial), max_(max) {}

    /// The delay before the next attempt; advances the attempt counter.
    std::chrono::milliseconds next(double unit_random) noexcept;
    /// The upper bound of the next delay (no jitter), without advancing.
    std::chrono::milliseconds ceiling() const noexcept;
    void reset() noexcept { attempt_ = 0; }
    unsigned attempts() const noexcept { return attempt_; }

private:
    std::chrono::milliseconds initial_;
    std::chrono::milliseconds max_;
    unsigned attempt_ = 0;
};

/// Token bucket: `burst` tokens, one more every `refill`. Time is passed in.
class token_bucket {
public:
    using time_point = std::chrono::steady_clock::time_point;

    token_bucket(unsigned burst, std::chrono::milliseconds refill, time_point now) noexcept
        : burst_(burst == 0 ? 1 : burst), refill_(refill), tokens_(burst_), stamp_(now) {}

    /// Takes a token if one is available now. Otherwise returns false and `wait_until` tells when
    /// the next token arrives.
    bool try_take(time_point now) noexcept;
    time_point wait_until() const noexcept { return stamp_ + refill_; }

private:
    void refill(time_point now) noexcept;

    unsigned burst_;
    std::chrono::milliseconds refill_;
    unsigned tokens_;
    time_point stamp_;
};

/// A uniform draw in [0, 1) from a thread-local generator (for jitter in the I/O code).
double unit_random() noexcept;

} // namespace colock::detail

#endif
