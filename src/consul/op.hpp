#ifndef COLOCK_SRC_CONSUL_OP_HPP
#define COLOCK_SRC_CONSUL_OP_HPP

// Runs the body of an operation as a coroutine and delivers its result to a type-erased handler.
// Every operation goes through launch(), which gives it these properties:
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

template <class... Ts>
void launch(const std::shared_ptr<client_impl>& impl, asio::awaitable<op_result<Ts...>> body,
            asio::any_completion_handler<void(error_code, Ts...)> handler)
{
    auto reg = impl->register_op();
    auto user_slot = asio::get_associated_cancellation_slot(handler);
    if (user_slot.is_connected())
        // co_spawn's default filter lets only terminal cancellation into the body; every operation abandons its
        // request on any kind (as documented), so partial and total are forwarded as terminal too.
        user_slot.assign([reg](asio::cancellation_type type) {
            if (type != asio::cancellation_type::none)
                reg->signal.emit(type | asio::cancellation_type::terminal);
        });
    auto handler_ex = asio::get_associated_executor(handler, impl->executor);
    auto done = [impl, reg, user_slot, h = std::move(handler)](std::exception_ptr ep,
                                                                 op_result<Ts...> result) mutable {
        auto slot = user_slot;
        if (slot.is_connected())
            slot.clear();
        if (ep) // bodies report errors through error codes; an exception here is a bug (e.g. bad_alloc)
            std::get<0>(result) = make_error_code(errc::bad_response);
        std::apply([&](auto&&... args) { std::move(h)(std::move(args)...); }, std::move(result));
    };
    asio::co_spawn(impl->executor, run_guarded(impl, reg, std::move(body)),
                   asio::bind_cancellation_slot(reg->signal.slot(), asio::bind_executor(handler_ex, std::move(done))));
}

} // namespace colock::consul::detail

#endif
