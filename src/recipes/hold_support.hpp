#ifndef COLOCK_SRC_RECIPES_HOLD_SUPPORT_HPP
#define COLOCK_SRC_RECIPES_HOLD_SUPPORT_HPP

// Pieces every holding recipe (lock, semaphore, election) shares: the options of its requests, the
// liveness of its session, the end-of-hold broadcast behind lost(), writes that must finish although
// their caller is cancelled, and the wrapper that lets both the caller's cancellation and the
// object's destruction stop a pending acquire.

#include <colock/consul/query.hpp>
#include <colock/consul/session.hpp>
#include <colock/consul/session_id.hpp>
#include <colock/error.hpp>

#include "consul/op.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <exception>
#include <memory>
#include <tuple>
#include <utility>

namespace colock::detail {

inline constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);

// A recipe's requests carry the caller's token, datacenter, namespace and partition, never the
// caller's per-call diagnostics (a recipe's requests outlive any one call).
inline consul::write_options recipe_write_options(const consul::request_options& request)
{
    consul::write_options w;
    static_cast<consul::request_options&>(w) = request;
    w.diag = nullptr;
    return w;
}
inline consul::query_options recipe_query_options(const consul::request_options& request)
{
    consul::query_options q;
    static_cast<consul::request_options&>(q) = request;
    q.diag = nullptr;
    return q;
}

// Whether `sess` is still the live session `id` (past its fail-safe deadline it is not): what a
// hold on it may still claim.
inline bool session_still_live(const consul::session* sess, const consul::session_id& id)
{
    return sess && sess->is_live() && sess->id() == id;
}

inline bool cancelled(const boost::asio::cancellation_state& cs)
{
    return cs.cancelled() != boost::asio::cancellation_type::none;
}

// Runs `body` to completion even if the calling coroutine is cancelled: writes whose outcome we need.
// (Callers run under consul::detail::launch, whose throw_if_cancelled(false) lets them see the result.)
template <class T>
boost::asio::awaitable<T> uncancellable(boost::asio::awaitable<T> body)
{
    namespace asio = boost::asio;
    auto ex = co_await asio::this_coro::executor;
    auto token = asio::bind_cancellation_slot(asio::cancellation_slot(), use_tuple);
    auto [ep, result] = co_await asio::co_spawn(ex, std::move(body), token);
    if (ep)
        std::rethrow_exception(ep);
    co_return result;
}

// The stop signal of an operation that may complete after its owner is gone (a hold's wait on its
// session's loss, its watch loop). A cancelled operation still clears its slot when it completes,
// later: its handler keeps the signal alive until then, so that is never freed memory.
class operation_stop {
public:
    // Binds `handler` to a fresh signal (the previous one stays with its own operation).
    template <class Handler>
    auto bind(Handler handler)
    {
        signal_ = std::make_shared<boost::asio::cancellation_signal>();
        return boost::asio::bind_cancellation_slot(
            signal_->slot(), [keep = signal_, h = std::move(handler)](auto&&... args) mutable {
                std::move(h)(std::forward<decltype(args)>(args)...);
            });
    }
    void emit()
    {
        if (signal_)
            signal_->emit(boost::asio::cancellation_type::terminal);
    }

private:
    std::shared_ptr<boost::asio::cancellation_signal> signal_;
};

// Broadcast of one hold's end: lost() waiters wait on `signal`, which is cancelled once.
struct hold_end {
    explicit hold_end(boost::asio::any_io_executor ex) : signal(ex, std::chrono::steady_clock::time_point::max()) {}
    boost::asio::steady_timer signal;
    error_code reason;

    void finish(error_code why)
    {
        reason = why;
        signal.cancel();
    }
};

// Completion of a background release, for the release() call waiting on it.
struct release_done {
    explicit release_done(boost::asio::any_io_executor ex) : signal(ex, std::chrono::steady_clock::time_point::max()) {}
    boost::asio::steady_timer signal;
    error_code ec;
    bool finished = false;

    void report(error_code e)
    {
        if (finished)
            return;
        ec = e;
        finished = true;
        signal.cancel();
    }
};

// Waits for a background release's first round; operation_aborted when only the wait was cancelled.
inline boost::asio::awaitable<std::tuple<error_code>> wait_for(std::shared_ptr<release_done> done)
{
    if (!done->finished)
        co_await done->signal.async_wait(use_tuple);
    if (!done->finished)
        co_return std::tuple{make_error_code(boost::asio::error::operation_aborted)};
    co_return std::tuple{done->ec};
}

// lost(): completes with (no error, why) when the hold ends, at once with `last_end` when there is
// no hold, and with operation_aborted when only the wait is cancelled.
inline void wait_for_hold_end(const std::shared_ptr<hold_end>& end, error_code last_end, boost::asio::any_io_executor ex,
                              boost::asio::any_completion_handler<void(error_code, error_code)> h)
{
    namespace asio = boost::asio;
    if (!end) {
        asio::post(ex, asio::append(std::move(h), error_code{}, last_end));
        return;
    }
    auto slot = asio::get_associated_cancellation_slot(h);
    auto hex = asio::get_associated_executor(h, ex);
    end->signal.async_wait(asio::bind_cancellation_slot(
        slot, asio::bind_executor(hex, [end, h = std::move(h)](error_code ec) mutable {
            if (end->reason) // the hold ended (the timer was cancelled for that)
                std::move(h)(error_code{}, end->reason);
            else // only our wait was cancelled
                std::move(h)(ec ? ec : make_error_code(asio::error::operation_aborted), error_code{});
        })));
}

// Wraps an acquire handler so that both the caller's cancellation and the object's destruction
// (which emits `impl->acquire_stop`) reach the operation. `Impl` has `acquire_stop` (a
// cancellation_signal) and `acquire_pending`, and derives from enable_shared_from_this.
template <class Impl, class... Ts>
boost::asio::any_completion_handler<void(error_code, Ts...)>
stoppable(Impl& s, boost::asio::any_io_executor ex, boost::asio::any_completion_handler<void(error_code, Ts...)> h)
{
    namespace asio = boost::asio;
    auto user_slot = asio::get_associated_cancellation_slot(h);
    auto impl = s.shared_from_this();
    if (user_slot.is_connected())
        user_slot.assign([impl](asio::cancellation_type t) { impl->acquire_stop.emit(t); });
    auto hex = asio::get_associated_executor(h, ex);
    s.acquire_pending = true;
    auto finish = [impl, user_slot, h = std::move(h)](error_code ec, Ts... args) mutable {
        impl->acquire_pending = false;
        auto slot = user_slot;
        if (slot.is_connected())
            slot.clear();
        std::move(h)(ec, std::move(args)...);
    };
    return asio::any_completion_handler<void(error_code, Ts...)>(
        asio::bind_cancellation_slot(s.acquire_stop.slot(), asio::bind_executor(hex, std::move(finish))));
}

// Starts an acquisition (`body`) of a holding recipe, stoppable by the caller and by the object's
// destruction; refused with operation_in_progress (after a post) while another one is pending.
template <class Impl, class... Ts>
void start_acquire(Impl& s, boost::asio::any_io_executor ex, boost::asio::awaitable<std::tuple<error_code, Ts...>> body,
                   boost::asio::any_completion_handler<void(error_code, Ts...)> h)
{
    if (s.acquire_pending) {
        boost::asio::post(ex, boost::asio::append(std::move(h), make_error_code(errc::operation_in_progress), Ts{}...));
        return;
    }
    auto wrapped = stoppable(s, ex, std::move(h));
    consul::detail::launch(s.cimpl, std::move(body), std::move(wrapped));
}

} // namespace colock::detail

#endif
