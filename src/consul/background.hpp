#ifndef COLOCK_SRC_CONSUL_BACKGROUND_HPP
#define COLOCK_SRC_CONSUL_BACKGROUND_HPP

// Background tasks of a client: coroutines no operation awaits directly (a key's watch loop, a
// session's renewal, a release that goes on after its caller was told). Like operations, they run on
// the client's strand and report errors through error codes. An exception out of one is something
// colock did not expect (std::bad_alloc, a bug, a user's callback); dropping it, as asio::detached
// does, would leave whoever waits on the task waiting forever. So it is logged once as an internal
// error and the spawner's failure action runs, which completes those waiters with
// errc::internal_error and gives back what the task held.

#include <colock/error.hpp>
#include <colock/logger.hpp>

#include "consul/client_impl.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>

#include <exception>
#include <memory>
#include <string>
#include <utility>

namespace colock::consul::detail {

/// The text of an exception, for the log.
inline std::string describe(const std::exception_ptr& ep)
{
    try {
        std::rethrow_exception(ep);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "an exception not derived from std::exception";
    }
}

/// The completion handler of the background task `what` of client `c`: nothing when the task ends
/// normally; after an exception, one error line and `on_failure()` (on the strand, where co_spawn
/// completes). Give it to co_spawn directly or wrapped (e.g. with a cancellation slot bound).
template <class OnFailure>
auto background_completion(const std::shared_ptr<client_impl>& c, std::string what, OnFailure on_failure)
{
    // The client by weak pointer: the handler must not keep it alive longer than the task already does.
    return [weak = std::weak_ptr<client_impl>(c), what = std::move(what),
            on_failure = std::move(on_failure)](std::exception_ptr ep) mutable {
        if (!ep)
            return;
        const auto line = "internal error: " + what + " ended by an exception (" + describe(ep) + ")";
        if (auto client = weak.lock())
            client->log.log(logger::level::error, line);
        else
            logger{}.log(logger::level::error, line); // the client is gone: stderr
        on_failure();
    };
}

/// Spawns `task` on the client's strand as the background task `what` (see above).
template <class OnFailure>
void spawn_background(const std::shared_ptr<client_impl>& c, std::string what, boost::asio::awaitable<void> task,
                      OnFailure on_failure)
{
    boost::asio::co_spawn(c->executor, std::move(task),
                          background_completion(c, std::move(what), std::move(on_failure)));
}

} // namespace colock::consul::detail

#endif
