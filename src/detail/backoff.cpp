#include "detail/backoff.hpp"

#include <algorithm>
#include <random>

namespace colock::detail {

std::chrono::milliseconds backoff::ceiling() const noexcept
{
    // Double until the cap, without overflowing for large attempt counts.
    auto c = initial_;
    for (unsigned i = 0; i < attempt_ && c < max_; ++i)
        c *= 2;
    return std::min(c, max_);
}

std::chrono::milliseconds backoff::next(double unit_random) noexcept
{
    const auto c = ceiling();
    ++attempt_;
    const double r = std::clamp(unit_random, 0.0, 1.0);
    return std::chrono::milliseconds(static_cast<std::int64_t>(static_cast<double>(c.count()) * r));
}

void token_bucket::refill(time_point now) noexcept
{
    if (refill_.count() <= 0) {
        tokens_ = burst_;
        stamp_ = now;
        return;
    }
    if (now <= stamp_)
        return;
    const auto gained = static_cast<unsigned long long>((now - stamp_) / refill_);
    if (gained == 0)
        return;
    if (gained >= burst_ - tokens_) {
        tokens_ = burst_;
        stamp_ = now;
    } else {
        tokens_ += static_cast<unsigned>(gained);
        stamp_ += refill_ * static_cast<long long>(gained);
    }
}

bool token_bucket::try_take(time_point now) noexcept
{
    refill(now);
    if (tokens_ == 0)
        return false;
    if (tokens_ == burst_)
        stamp_ = now; // a full bucket starts its refill clock when a token is taken
    --tokens_;
    return true;
}

double unit_random() noexcept
{
    thread_local std::mt19937_64 gen{std::random_device{}()};
    return std::uniform_real_distribution<double>(0.0, 1.0)(gen);
}

} // namespace colock::detail
