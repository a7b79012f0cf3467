#ifndef COLOCK_DETAIL_INITIATE_HPP
#define COLOCK_DETAIL_INITIATE_HPP

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>

#include <utility>

namespace colock::detail {

// Initiation object shared by every public operation: it exposes the object's executor (so tokens
// such as asio::deferred and use_awaitable know where to run) and type-erases the handler, so that
// the body of each operation is an ordinary function compiled once in src/.
template <class Signature, class Fn>
struct erased_initiation {
    using executor_type = boost::asio::any_io_executor;
    executor_type executor;
    Fn fn;

    executor_type get_executor() const noexcept { return executor; }

    template <class Handler, class... Args>
    void operator()(Handler&& handler, Args&&... args)
    {
        fn(boost::asio::any_completion_handler<Signature>(std::forward<Handler>(handler)),
           std::forward<Args>(args)...);
    }
};

// Starts an operation with completion signature `Signature`: `fn(any_completion_handler, args...)`
// is called when the token decides (at once for callbacks, on co_await for asio::deferred).
template <class Signature, class Token, class Fn, class... Args>
auto initiate(const boost::asio::any_io_executor& ex, Token&& token, Fn fn, Args&&... args)
{
    return boost::asio::async_initiate<Token, Signature>(
        erased_initiation<Signature, Fn>{ex, std::move(fn)}, token, std::forward<Args>(args)...);
}

} // namespace colock::detail

#endif
