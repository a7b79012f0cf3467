#ifndef COLOCK_SRC_CONSUL_OP_HPP
#define COLOCK_SRC_CONSUL_OP_HPP

// Runs the body of an operation as a coroutine and delivers its result to a type-erased handler.
// Every operation goes through launch(), which gives it these properties:
// - it may be started from any thread: the body runs on the client's strand;
// - it never completes inline: co_spawn may run the body at once, up to its first suspension, but
//   it always posts the completion;
// - the caller's per-operation cancellation reaches the coroutine (and the I/O inside it);
// - client::cancel() reaches it too (every pending operation is registered with the client);
// - cancellation never throws inside the body (throw_if_cancelled is off): bodies check the
//   cancellation state and report operation_aborted through their error code.

#include "consul/client_impl.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

#include <exception>
#include <memory>
#include <tuple>
#include <utility>

namespace colock::consul::detail {

namespace asio = boost::asio;

template <class... Ts>
using op_result = std::tuple<error_code, Ts...>;

template <class... Ts>
asio::awaitable<op_result<Ts...>> run_guarded(std::shared_ptr<client_impl> impl,
                                              std::shared_ptr<op_registration> reg,
                                              asio::awaitable<op_result<Ts...>> body)
{
    // Unregistered here, on the client's executor, whatever executor the handler runs on; also if
    // the body throws (a bug) or its frame is destroyed unfinished.
    struct unregister {
        client_impl& impl;
        const std::shared_ptr<op_registration>& reg;
        ~unregister() { impl.unregister_op(reg); }
    } guard{*impl, reg};
    co_await asio::this_coro::throw_if_cancelled(false);
    co_return co_await std::move(body);
}

// Starts `body` on the client's strand and delivers its result to `handler` on the handler's associated
// executor (default: the client's own). Callable from any thread: the caller's cancellation slot is
// assigned here, on the caller's side, and only posts to the strand, where the operation's signal
// (`reg`, registered with the client for client::cancel()) is emitted.
template <class... Ts>
void launch(const std::shared_ptr<client_impl>& impl, asio::awaitable<op_result<Ts...>> body,
            asio::any_completion_handler<void(error_code, Ts...)> handler,
            std::shared_ptr<op_registration> reg = std::make_shared<op_registration>())
{
    auto user_slot = asio::get_associated_cancellation_slot(handler);
    if (user_slot.is_connected())
        // co_spawn's default filter lets only terminal cancellation into the body; every operation abandons its
        // request on any kind (as documented), so partial and total are forwarded as terminal too.
        user_slot.assign([strand = impl->executor, weak = std::weak_ptr<op_registration>(reg)](asio::cancellation_type type) {
            if (type == asio::cancellation_type::none)
                return;
            asio::post(strand, [weak, type] {
                if (auto r = weak.lock())
                    r->signal.emit(type | asio::cancellation_type::terminal);
            });
        });
    auto handler_ex = asio::get_associated_executor(handler, impl->user_executor);
    // `reg` rides in the completion handler: its signal must outlive co_spawn's use of the slot.
    auto done = [reg, user_slot, h = std::move(handler)](std::exception_ptr ep, op_result<Ts...> result) mutable {
        auto slot = user_slot;
        if (slot.is_connected())
            slot.clear();
        if (ep) // bodies report errors through error codes; an exception here is colock's own bug
            std::get<0>(result) = make_error_code(errc::internal_error);
        std::apply([&](auto&&... args) { std::move(h)(std::move(args)...); }, std::move(result));
    };
    auto start = [impl, reg, b = std::move(body), d = asio::bind_executor(handler_ex, std::move(done))]() mutable {
        impl->register_op(reg);
        auto slot = reg->signal.slot();
        asio::co_spawn(impl->executor, run_guarded(impl, reg, std::move(b)),
                       asio::bind_cancellation_slot(slot, std::move(d)));
    };
    asio::dispatch(impl->executor, std::move(start));
}

} // namespace colock::consul::detail

#endif
