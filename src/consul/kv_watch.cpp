// kv_watch: the blocking-query loop of one key. index_tracker decides the index, token_bucket
// paces the loop, backoff spaces out retries after errors.

#include <colock/consul/kv_watch.hpp>

#include "consul/client_impl.hpp"
#include "consul/op.hpp"
#include "consul/ops.hpp"
#include "detail/backoff.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>

namespace colock::consul::detail {

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;

struct kv_watch_impl {
    kv_watch_impl(std::shared_ptr<client_impl> c, std::string k, kv_watch_options o)
        : client(std::move(c)), key(std::move(k)), options(std::move(o)),
          bucket(options.burst, options.refill, clock_type::now()),
          errors(options.error_backoff_initial, options.error_backoff_max)
    {
    }

    std::shared_ptr<client_impl> client;
    std::string key;
    kv_watch_options options;
    index_tracker tracker;
    colock::detail::token_bucket bucket;
    colock::detail::backoff errors;
    bool failed_last = false;
    // On the client's strand: one next() at a time; ~kv_watch stops it through its registration.
    bool pending = false;
    std::weak_ptr<op_registration> pending_reg;
    std::atomic<std::uint64_t> last_index{0}; // for index(), from any thread
};

namespace {

asio::awaitable<std::tuple<error_code, kv_get_result>> next_body(std::shared_ptr<kv_watch_impl> w)
{
    constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
    asio::steady_timer pause(w->client->executor);
    for (;;) {
        // Space out queries: after an error by backoff, otherwise by the token bucket.
        clock_type::time_point not_before = clock_type::now();
        if (w->failed_last)
            not_before += w->errors.next(colock::detail::unit_random());
        // The backoff first, then one token taken at the current time (taking it at the future `not_before`
        // charged the bucket twice and made the wait run to the next refill even with tokens left).
        for (;;) {
            const auto now = clock_type::now();
            if (now >= not_before && w->bucket.try_take(now))
                break;
            pause.expires_at(now < not_before ? not_before : w->bucket.wait_until());
            auto [ec] = co_await pause.async_wait(use_tuple);
            if (ec)
                co_return std::tuple{make_error_code(asio::error::operation_aborted), kv_get_result{}};
        }
        query_options q;
        static_cast<request_options&>(q) = w->options.request;
        q.consistency = w->options.consistency;
        q.wait = w->options.wait;
        q.index = w->tracker.next_index();
        auto [ec, result] = co_await kv_get_body(w->client, w->key, q);
        if (ec == asio::error::operation_aborted)
            co_return std::tuple{ec, kv_get_result{}};
        if (ec) {
            w->failed_last = true;
            co_return std::tuple{ec, kv_get_result{}};
        }
        w->failed_last = false;
        w->errors.reset();
        const bool changed = w->tracker.on_reply(result.meta.index);
        w->last_index = w->tracker.last_index();
        if (changed) {
            if (w->tracker.regressed())
                w->client->info("watch '" + w->key + "': index went backwards, starting over");
            co_return std::tuple{error_code{}, std::move(result)};
        }
        // Same index: a timeout or a spurious wake-up. Ask again.
    }
}

// Runs next_body when no other next() of the watch is pending (decided on the strand).
asio::awaitable<std::tuple<error_code, kv_get_result>> one_next_at_a_time(std::shared_ptr<kv_watch_impl> w,
                                                                          std::weak_ptr<op_registration> reg)
{
    if (w->pending)
        co_return std::tuple{make_error_code(errc::operation_in_progress), kv_get_result{}};
    w->pending = true;
    w->pending_reg = std::move(reg);
    struct done_guard {
        kv_watch_impl& w;
        ~done_guard()
        {
            w.pending = false;
            w.pending_reg.reset();
        }
    } guard{*w};
    co_return co_await next_body(w);
}

} // namespace
} // namespace colock::consul::detail

namespace colock::consul {

kv_watch::kv_watch(client& c, std::string key, kv_watch_options opts)
    : executor_(c.get_executor()), impl_(std::make_shared<detail::kv_watch_impl>(c.impl(), std::move(key), std::move(opts)))
{
}

kv_watch::kv_watch(kv_watch&&) noexcept = default;
kv_watch& kv_watch::operator=(kv_watch&&) noexcept = default;
kv_watch::~kv_watch()
{
    // A pending next() would otherwise hold a connection for the rest of its blocking query.
    if (impl_)
        boost::asio::dispatch(impl_->client->executor, [w = impl_] {
            if (auto reg = w->pending_reg.lock())
                reg->signal.emit(boost::asio::cancellation_type::terminal);
        });
}

const std::string& kv_watch::key() const noexcept { return impl_->key; }
std::uint64_t kv_watch::index() const noexcept { return impl_->last_index.load(); }

void kv_watch::next_impl(boost::asio::any_completion_handler<void(error_code, kv_get_result)> h)
{
    namespace asio = boost::asio;
    if (!impl_) { // moved-from
        asio::post(executor_, asio::append(std::move(h), make_error_code(errc::invalid_argument), kv_get_result{}));
        return;
    }
    auto reg = std::make_shared<detail::op_registration>();
    auto body = detail::one_next_at_a_time(impl_, reg);
    detail::launch(impl_->client, std::move(body), std::move(h), std::move(reg));
}

} // namespace colock::consul
