#ifndef COLOCK_CONSUL_KV_WATCH_HPP
#define COLOCK_CONSUL_KV_WATCH_HPP

#include <colock/consul/client.hpp>
#include <colock/consul/index_tracker.hpp>
#include <colock/consul/kv.hpp>
#include <colock/consul/query.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace colock::consul {

namespace detail {
struct kv_watch_impl;
}

/// Settings of a kv_watch.
struct kv_watch_options {
    /// `wait` of each blocking query; zero = the client's default_wait.
    std::chrono::milliseconds wait{0};
    consistency_mode consistency = consistency_mode::default_mode;
    request_options request;
    /// Rate limit of the query loop (token bucket): up to `burst` queries at once, then one per
    /// `refill`. A churning index (wake-ups without a real change) cannot turn into a hot loop, and
    /// the happy path (a real change now and then) is never delayed.
    unsigned burst = 8;
    std::chrono::milliseconds refill{100};
    /// After a failed query, wait with capped exponential backoff (with jitter) before the next.
    std::chrono::milliseconds error_backoff_initial{100};
    std::chrono::milliseconds error_backoff_max{std::chrono::seconds(5)};
};

/// Follows one key with blocking queries, applying Consul's index rules (index_tracker).
///
/// `next()` completes with the key's state the first time it is called (a plain read), then each
/// time the key's index changes: a wake-up that brings the same index is not delivered. Errors are
/// delivered (the next call continues with backoff); the watch stays usable.
class kv_watch {
public:
    kv_watch(client& c, std::string key, kv_watch_options opts = {});
    kv_watch(kv_watch&&) noexcept;
    kv_watch& operator=(kv_watch&&) noexcept;
    ~kv_watch();

    /// Asynchronously waits for the key's next state. Signature: void(error_code, kv_get_result).
    /// Cancellation: total; the query in flight is abandoned at once (the watch stays usable).
    /// One next() at a time per watch (another completes with errc::operation_in_progress).
    /// Destroying the watch cancels a pending next(). A moved-from watch only accepts assignment
    /// and destruction (next() completes with errc::invalid_argument).
    template <boost::asio::completion_token_for<void(error_code, kv_get_result)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto next(Token&& token = {})
    {
        return colock::detail::initiate<void(error_code, kv_get_result)>(
            executor_, std::forward<Token>(token), [this](auto h) { next_impl(std::move(h)); });
    }

    const std::string& key() const noexcept;
    /// The index of the last reply (0 before the first).
    std::uint64_t index() const noexcept;

private:
    void next_impl(boost::asio::any_completion_handler<void(error_code, kv_get_result)> h);

    boost::asio::any_io_executor executor_;
    std::shared_ptr<detail::kv_watch_impl> impl_;
};

} // namespace colock::consul

#endif
