#ifndef COLOCK_SRC_RECIPES_HOLD_SUPPORT_HPP
#define COLOCK_SRC_RECIPES_HOLD_SUPPORT_HPP

// Pieces every holding recipe (lock, semaphore, election) shares: the options of its requests, the
// liveness of its session, the end-of-hold broadcast behind lost(), writes that must finish although
// their caller is cancelled, and the wrapper that lets both the caller's cancellation and the
// object's destruction stop a pending acquire.

#include <colock/consul/config.hpp>
#include <colock/consul/query.hpp>
#include <colock/consul/session.hpp>
#include <colock/consul/session_id.hpp>
#include <colock/error.hpp>

#include "consul/op.hpp"
#include "detail/strand_cancellation.hpp"

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
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
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

// Which of the datacenter, namespace, partition and token of `session_request` (what a session was
// made with) and `recipe_request` (what a recipe's requests carry) name different things once empty
// fields are filled with the client's defaults `c`; empty when none. Token values are never named.
inline std::string request_mismatch(const consul::request_options& session_request,
                                    const consul::request_options& recipe_request, const consul::client_options& c)
{
    std::string out;
    auto compare = [&](const char* what, const std::string& s, const std::string& r, const std::string& fallback,
                       bool show) {
        const auto& se = s.empty() ? fallback : s;
        const auto& re = r.empty() ? fallback : r;
        if (se == re)
            return;
        if (!out.empty())
            out += ", ";
        out += what;
        if (show)
            out += " (session '" + se + "', requests '" + re + "')";
    };
    compare("datacenter", session_request.datacenter, recipe_request.datacenter, c.datacenter, true);
    compare("namespace", session_request.ns, recipe_request.ns, c.ns, true);
    compare("partition", session_request.partition, recipe_request.partition, c.partition, true);
    compare("token", session_request.token, recipe_request.token, c.token, false);
    return out;
}

// Whether `sess` is still the live session `id` (past its fail-safe deadline it is not): what a
// hold on it may still claim.
inline bool session_still_live(const consul::session* sess, const consul::session_id& id)
{
    return sess && sess->is_live() && sess->id() == id;
}

// How often a held key or prefix is re-read when the watch budget leaves it without a blocking
// query: twice per trust window of the hold's session (so a loss is seen within it).
inline std::chrono::milliseconds hold_poll_interval(const consul::session* sess)
{
    const auto window = sess ? sess->trust_window() : std::chrono::milliseconds(0);
    const auto base = window.count() > 0 ? window : std::chrono::milliseconds(15000);
    return std::max(base / 2, std::chrono::milliseconds(100));
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

// Waits for a background release's first round, but not past `deadline` and not cancellable (a
// cancelled acquisition giving back a write that won); false when the round is still going on.
// `done` must be its waiter's alone: moving the deadline ends other waits on it.
inline boost::asio::awaitable<bool> wait_until(std::shared_ptr<release_done> done,
                                               std::chrono::steady_clock::time_point deadline)
{
    namespace asio = boost::asio;
    if (!done->finished) {
        done->signal.expires_at(deadline);
        co_await done->signal.async_wait(asio::bind_cancellation_slot(asio::cancellation_slot(), use_tuple));
    }
    co_return done->finished;
}

// The outcome of a give-back started by closable::close_holds() (none started: success).
inline boost::asio::awaitable<error_code> release_outcome(std::shared_ptr<release_done> done)
{
    if (!done)
        co_return error_code{};
    auto [ec] = co_await wait_for(std::move(done));
    co_return ec;
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

// One acquisition at a time per recipe object, decided on the client's strand: `body` runs only when
// no other acquisition of `self` is pending (otherwise operation_in_progress). While it runs,
// `self->acquire_reg` names its registration, whose signal the object's destruction emits.
// `Impl` has `acquire_pending` (bool) and `acquire_reg` (weak_ptr<op_registration>).
template <class Impl, class... Ts>
boost::asio::awaitable<std::tuple<error_code, Ts...>>
one_acquire_at_a_time(std::shared_ptr<Impl> self, std::weak_ptr<consul::detail::op_registration> reg,
                      boost::asio::awaitable<std::tuple<error_code, Ts...>> body)
{
    if (self->acquire_pending)
        co_return std::tuple<error_code, Ts...>{make_error_code(errc::operation_in_progress), Ts{}...};
    self->acquire_pending = true;
    self->acquire_reg = std::move(reg);
    struct done_guard {
        Impl& s;
        ~done_guard()
        {
            s.acquire_pending = false;
            s.acquire_reg.reset();
        }
    } guard{*self};
    co_return co_await std::move(body);
}

// Starts an acquisition (`body`) of a holding recipe: stoppable by the caller, by client::cancel()
// and by the object's destruction (stop_acquire()); refused with operation_in_progress while another
// one is pending. Callable from any thread.
template <class Impl, class... Ts>
void start_acquire(Impl& s, boost::asio::awaitable<std::tuple<error_code, Ts...>> body,
                   boost::asio::any_completion_handler<void(error_code, Ts...)> h)
{
    auto reg = std::make_shared<consul::detail::op_registration>();
    auto exclusive = one_acquire_at_a_time(s.shared_from_this(), reg, std::move(body));
    consul::detail::launch(s.cimpl, std::move(exclusive), std::move(h), std::move(reg));
}

// On the strand: stops the pending acquisition of `s`, if any (the object is being destroyed).
template <class Impl>
void stop_acquire(Impl& s)
{
    if (auto reg = s.acquire_reg.lock())
        reg->signal.emit(boost::asio::cancellation_type::terminal);
}

// lost() of a holding recipe, callable from any thread: decided on the strand, completed on the
// handler's executor (default `user_ex`). `Impl` has `state`, `end` and `last_end`.
template <class Impl>
void lost_on_strand(std::shared_ptr<Impl> self, boost::asio::any_io_executor user_ex,
                    boost::asio::any_completion_handler<void(error_code, error_code)> h)
{
    namespace asio = boost::asio;
    const auto strand = self->cimpl->executor;
    auto on_strand = cancellable_on(strand, user_ex, std::move(h));
    asio::dispatch(strand, [self = std::move(self), user_ex, h = std::move(on_strand)]() mutable {
        const bool holding = self->state == Impl::phase::held && self->end;
        wait_for_hold_end(holding ? self->end : nullptr, self->last_end, user_ex, std::move(h));
    });
}

// What a holding recipe's accessors read from any thread. The strand publishes it whenever a hold
// starts or ends or its count changes; a hold's session is cleared here before it can be destroyed.
struct hold_view {
    bool held = false;
    std::uint64_t token = 0;
    unsigned count = 0;
    std::uint64_t lock_index = 0;
    std::optional<consul::session_id> sid;
    const consul::session* sess = nullptr;
};

// A hold_view read at one instant, with the session's liveness (past its deadline it holds nothing).
struct hold_reading {
    bool held = false; // a hold is recorded (session_id() shows it even past the deadline)
    bool live = false; // and its session is still live: is_held()
    std::uint64_t token = 0;
    unsigned count = 0;
    std::uint64_t lock_index = 0;
    std::optional<consul::session_id> sid;
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::min();
};

class published_hold {
public:
    void publish(hold_view v)
    {
        std::lock_guard guard(mutex_);
        view_ = std::move(v);
    }
    hold_reading read() const
    {
        std::lock_guard guard(mutex_);
        hold_reading r;
        r.held = view_.held;
        r.live = view_.held && view_.sid && session_still_live(view_.sess, *view_.sid);
        if (r.held)
            r.sid = view_.sid;
        if (r.live) {
            r.token = view_.token;
            r.count = view_.count;
            r.lock_index = view_.lock_index;
            r.deadline = view_.sess->deadline();
        }
        return r;
    }

private:
    mutable std::mutex mutex_;
    hold_view view_;
};

} // namespace colock::detail

#endif
