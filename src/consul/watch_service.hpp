#ifndef COLOCK_SRC_CONSUL_WATCH_SERVICE_HPP
#define COLOCK_SRC_CONSUL_WATCH_SERVICE_HPP

// The client's watch service: every key that colock's recipes follow (waiters and holders) goes
// through it, so a key has one blocking query however many local users it has, and the client keeps
// at most `budget` blocking queries open (Consul refuses more than 200 connections per client IP).
// Keys beyond the budget are read together through /v1/txn `get` operations (64 per transaction) at
// the interval their users ask for; a key is promoted to a blocking query when a slot frees.
//
// client::cancel() stops every query; subscribers then get a view with error operation_aborted.
//
// Users subscribe with a callback that receives every new view of the key (a changed index, an
// error, or the first answer). Callbacks run on the client's executor and may unsubscribe.

#include <colock/consul/kv.hpp>
#include <colock/consul/query.hpp>
#include <colock/error.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace colock::consul::detail {

struct client_impl;

/// What the service knows about one key.
struct key_view {
    std::uint64_t version = 0;     ///< grows with every delivery
    bool known = false;            ///< false until the first answer
    std::optional<kv_entry> entry; ///< empty: the key does not exist
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

    std::size_t blocking_queries() const noexcept; ///< keys with a blocking query (draining ones included)
    std::size_t polled_keys() const noexcept;      ///< keys verified through transactions
    std::uint64_t poll_transactions() const noexcept;

private:
    std::shared_ptr<watch_state> state_;
};

} // namespace colock::consul::detail

#endif
