#ifndef COLOCK_SRC_CONSUL_WATCH_SERVICE_HPP
#define COLOCK_SRC_CONSUL_WATCH_SERVICE_HPP

// The client's watch service: every key and every prefix that colock's recipes follow (waiters and
// holders; a lock follows its key, a semaphore its prefix) goes through it, so each has one blocking
// query however many local users it has, and the client keeps at most `budget` blocking queries open
// (Consul refuses more than 200 connections per client IP). What is beyond the budget is read
// together through /v1/txn `get-or-empty` and `get-tree` operations (64 per transaction) at the
// interval its users ask for, and promoted to a blocking query when a slot frees.
//
// client::cancel() stops every query; subscribers then get a view with error operation_aborted.
//
// Users subscribe with a callback that receives every new view of the key (a changed index, an
// error, or the first answer). Callbacks run on the client's executor and may unsubscribe.

#include <colock/consul/kv.hpp>
#include <colock/consul/query.hpp>
#include <colock/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace colock::consul::detail {

struct client_impl;

/// What the service knows about one key (or one prefix).
struct key_view {
    std::uint64_t version = 0;     ///< grows with every delivery
    bool known = false;            ///< false until the first answer
    std::optional<kv_entry> entry; ///< a key: empty when it does not exist
    std::vector<kv_entry> entries; ///< a prefix: every key under it, in key order
    std::uint64_t index = 0;       ///< blocking-query index of that answer
    error_code error;              ///< set when the last query failed (entry/index are older)
};

/// What one subscriber needs.
struct watch_interest {
    watch_interest() noexcept {}
    bool consistent = false;                          ///< ownership checks: ?consistent reads
    std::chrono::milliseconds poll_interval{1000};    ///< staleness allowed without a blocking query
    std::chrono::milliseconds start_delay{0};         ///< a new key's first query waits this long
};

struct watch_state;
struct watch_entry;
struct watch_subscriber;

class watch_service {
public:
    using callback = std::function<void(const key_view&)>;

    /// Removes its subscriber when destroyed.
    class subscription {
    public:
        subscription(std::shared_ptr<watch_state> st, std::shared_ptr<watch_entry> e,
                     std::shared_ptr<watch_subscriber> s) noexcept;
        subscription(const subscription&) = delete;
        subscription& operator=(const subscription&) = delete;
        ~subscription();
        void set_interest(const watch_interest& interest);
        const key_view& view() const noexcept;

    private:
        std::shared_ptr<watch_state> state_;
        std::shared_ptr<watch_entry> entry_;
        std::shared_ptr<watch_subscriber> sub_;
    };

    watch_service(client_impl& client, std::size_t budget, std::chrono::milliseconds wait);
    watch_service(const watch_service&) = delete;
    watch_service& operator=(const watch_service&) = delete;
    ~watch_service();

    /// Follows `key`, read with `request`'s token, datacenter, namespace and partition (users with
    /// different ones never share a query). `seed`, when known, is a fresh view the caller already
    /// has (e.g. from its own write): the first blocking query starts from its index.
    std::unique_ptr<subscription> subscribe(const std::string& key, const request_options& request,
                                            const watch_interest& interest, callback cb,
                                            const std::optional<key_view>& seed = std::nullopt);

    /// Follows every key under `prefix` (views carry `entries`), as subscribe() follows one key. A
    /// seed must list the prefix as it was at the seed's index.
    std::unique_ptr<subscription> subscribe_prefix(const std::string& prefix, const request_options& request,
                                                   const watch_interest& interest, callback cb,
                                                   const std::optional<key_view>& seed = std::nullopt);

    std::size_t blocking_queries() const noexcept; ///< keys and prefixes with a blocking query (draining ones included)
    std::size_t polled_keys() const noexcept;      ///< keys and prefixes verified through transactions
    std::uint64_t poll_transactions() const noexcept;

private:
    std::unique_ptr<subscription> subscribe_any(const std::string& key, bool prefix, const request_options& request,
                                                const watch_interest& interest, callback cb,
                                                const std::optional<key_view>& seed);

    std::shared_ptr<watch_state> state_;
};

/// One acquisition's wait for news of what it contends for: a subscription whose deliveries wake
/// next(). Lives on the client's strand, like the service.
class change_waiter {
public:
    explicit change_waiter(boost::asio::any_io_executor executor);

    bool following() const noexcept { return sub_ != nullptr; }
    /// Subscribes (to a key, or to a prefix when `prefix`); view() is then the service's view.
    void follow(watch_service& service, const std::string& key, bool prefix, const request_options& request,
                const watch_interest& interest, const std::optional<key_view>& seed);
    const key_view& view() const noexcept { return sub_->view(); }
    /// Marks the current view as seen: next() waits for a newer one.
    void mark_seen() noexcept { seen_ = sub_->view().version; }
    /// A view newer than the last one seen (waits for a delivery), or null when the wait was
    /// cancelled first.
    boost::asio::awaitable<const key_view*> next();

private:
    std::unique_ptr<watch_service::subscription> sub_;
    std::shared_ptr<boost::asio::steady_timer> wake_;
    std::uint64_t seen_ = 0;
};

} // namespace colock::consul::detail

#endif
