#ifndef COLOCK_SRC_CONSUL_SESSION_LIVENESS_HPP
#define COLOCK_SRC_CONSUL_SESSION_LIVENESS_HPP

// The renewal and loss decisions of a managed session, without I/O or real time: the driver in
// session.cpp feeds it events with their times and asks when to act next.
//
// Rules (CONSUL.md 1.2 and 5; TESTING.md D1):
// - the session is trusted for a window after the send time of its last successful create/renew:
//   the TTL (D1: Consul never expires it sooner), or, for a session bound to health checks, at most
//   its lock-delay (D2: a check can invalidate it at any moment, and other sessions may acquire its
//   keys once the lock-delay after that has passed);
// - renew at half the window, minus up to 10 % jitter;
// - after a failed renewal, retry after min(1 s, window/5), never later than the deadline;
// - adopt a larger TTL from a renewal reply (up to 24 h); a smaller or absurd one is ignored;
// - deadline = send time of the last success + window - margin; past it the session is lost
//   (session_expired) even if no reply ever comes; a 404 means lost now (session_invalidated).

#include <colock/error.hpp>

#include <chrono>
#include <optional>

namespace colock::consul::detail {

class session_liveness {
public:
    using clock = std::chrono::steady_clock;
    using time_point = clock::time_point;
    using duration = std::chrono::milliseconds;

    /// `margin` zero: TTL/20.
    explicit session_liveness(duration margin = duration(0)) noexcept : margin_(margin) {}

    /// `confirmation_window`: for a session bound to health checks, its lock-delay (zero: none).
    void on_created(time_point sent, duration ttl, duration confirmation_window = duration(0)) noexcept
    {
        lost_.reset();
        live_ = true;
        window_cap_ = confirmation_window;
        on_success(sent, ttl);
    }

    /// A renewal sent at `sent` succeeded; `server_ttl` is the TTL in the reply (zero: unchanged).
    void on_renewed(time_point sent, duration server_ttl) noexcept
    {
        if (!live_)
            return;
        const bool adopt = server_ttl > ttl_ && server_ttl <= std::chrono::hours(24);
        on_success(sent, adopt ? server_ttl : ttl_);
    }

    /// A renewal failed transiently (transport error, 5xx, timeout) at `now`.
    void on_renew_failed(time_point now) noexcept
    {
        if (!live_)
            return;
        failures_++;
        next_renew_ = std::min(now + retry_interval(), deadline_);
    }

    /// Consul answered 404: the session is gone.
    void on_invalidated() noexcept { mark_lost(errc::session_invalidated); }

    /// Checks the fail-safe deadline at `now`; returns the loss reason if lost (now or before).
    std::optional<errc> check(time_point now) noexcept
    {
        if (live_ && now >= deadline_)
            mark_lost(errc::session_expired);
        return lost_;
    }

    /// Ends tracking without a loss (closed by its owner).
    void on_closed() noexcept
    {
        live_ = false;
        lost_.reset();
    }

    /// When the next renewal should be sent; `unit_random` in [0, 1) draws the jitter.
    time_point next_renew(double unit_random) const noexcept
    {
        if (failures_ > 0)
            return next_renew_;
        if (ttl_.count() == 0)
            return time_point::max(); // no TTL: nothing to renew
        const auto jitter = std::chrono::duration_cast<duration>(window() / 10 * unit_random);
        return last_ok_sent_ + window() / 2 - jitter;
    }

    time_point deadline() const noexcept { return deadline_; }
    duration ttl() const noexcept { return ttl_; }
    bool live() const noexcept { return live_; }
    std::optional<errc> lost_reason() const noexcept { return lost_; }
    unsigned consecutive_failures() const noexcept { return failures_; }
    duration retry_interval() const noexcept { return std::min(duration(1000), std::max(window() / 5, duration(1))); }
    /// How long a success keeps the session trusted: the TTL, capped by the confirmation window.
    duration window() const noexcept
    {
        return window_cap_.count() > 0 && window_cap_ < ttl_ ? window_cap_ : ttl_;
    }
    void set_margin(duration m) noexcept { margin_ = m; }

private:
    void on_success(time_point sent, duration ttl) noexcept
    {
        ttl_ = ttl;
        failures_ = 0;
        last_ok_sent_ = sent;
        if (ttl_.count() == 0) {
            deadline_ = time_point::max(); // no TTL: only invalidation ends the session
            return;
        }
        const duration margin = margin_.count() > 0 ? margin_ : window() / 20;
        deadline_ = sent + window() - std::min(margin, window() / 2);
    }

    void mark_lost(errc why) noexcept
    {
        if (!live_)
            return;
        live_ = false;
        lost_ = why;
    }

    duration margin_;
    duration ttl_{0};
    duration window_cap_{0};
    time_point last_ok_sent_{};
    time_point deadline_ = time_point::min();
    time_point next_renew_{};
    unsigned failures_ = 0;
    bool live_ = false;
    std::optional<errc> lost_;
};

} // namespace colock::consul::detail

#endif
