#ifndef COLOCK_SRC_RECIPES_ACQUIRING_WRITE_HPP
#define COLOCK_SRC_RECIPES_ACQUIRING_WRITE_HPP

// The write that claims a lock (or a semaphore's slot), run in the background. An acquisition needs
// its outcome even when cancelled, since a write that won must be given back; but a cancelled
// acquisition must also complete promptly, whatever the network does. So once cancelled it waits
// for the outcome only until its stop deadline (the client's request_timeout after it noticed the
// cancellation), and then leaves the outcome to a cleanup that runs when it arrives.

#include <colock/consul/query.hpp>
#include <colock/consul/txn.hpp>
#include <colock/error.hpp>

#include "consul/background.hpp"
#include "consul/client_impl.hpp"
#include "consul/ops.hpp"
#include "recipes/hold_support.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace colock::detail {

// When a cancelled acquisition stops waiting: set once, when it first notices the cancellation.
class stop_deadline {
public:
    using clock = std::chrono::steady_clock;
    clock::time_point noticed(std::chrono::milliseconds grace)
    {
        if (!at_)
            at_ = clock::now() + grace;
        return *at_;
    }

private:
    std::optional<clock::time_point> at_;
};

struct acquiring_write {
    using outcome = std::tuple<error_code, consul::txn_result>;

    explicit acquiring_write(boost::asio::any_io_executor ex)
        : signal(std::move(ex), std::chrono::steady_clock::time_point::max())
    {
    }
    boost::asio::steady_timer signal;
    std::optional<outcome> result;
    std::function<void(const outcome&)> cleanup; // set by an acquisition that stopped waiting

    void report(outcome o)
    {
        result = std::move(o);
        signal.cancel();
        if (cleanup) {
            auto c = std::move(cleanup);
            cleanup = nullptr;
            c(*result);
        }
    }
};

namespace write_detail {
inline boost::asio::awaitable<void> run(std::shared_ptr<acquiring_write> w, std::shared_ptr<consul::detail::client_impl> c,
                                        std::vector<consul::txn_op> ops, consul::write_options wo)
{
    auto r = co_await consul::detail::txn_body(std::move(c), std::move(ops), std::move(wo));
    w->report(std::move(r));
}
} // namespace write_detail

// Sends `ops` as one transaction in the background (named `what` in the log if it throws: then its
// outcome is errc::internal_error, which counts as unknown).
inline std::shared_ptr<acquiring_write> start_acquiring_write(const std::shared_ptr<consul::detail::client_impl>& c,
                                                              std::string what, std::vector<consul::txn_op> ops,
                                                              consul::write_options wo)
{
    auto w = std::make_shared<acquiring_write>(c->executor);
    consul::detail::spawn_background(c, std::move(what), write_detail::run(w, c, std::move(ops), std::move(wo)), [w] {
        w->report(acquiring_write::outcome{make_error_code(errc::internal_error), {}});
    });
    return w;
}

// Waits for the write's outcome; true when it is known (then in w->result). Once the caller is
// cancelled, waits no longer than `deadline` (false: the outcome is still to come).
inline boost::asio::awaitable<bool> outcome_of(std::shared_ptr<acquiring_write> w, stop_deadline& deadline,
                                               std::chrono::milliseconds grace)
{
    namespace asio = boost::asio;
    if (!w->result) {
        auto cs = co_await asio::this_coro::cancellation_state;
        if (!cancelled(cs))
            co_await w->signal.async_wait(use_tuple); // ends with the outcome, or with the caller's cancellation
    }
    if (w->result)
        co_return true;
    w->signal.expires_at(deadline.noticed(grace));
    co_await w->signal.async_wait(asio::bind_cancellation_slot(asio::cancellation_slot(), use_tuple));
    co_return w->result.has_value();
}

// Whether a write with this outcome may have been applied (only a rollback says it was not).
inline bool may_have_won(const acquiring_write::outcome& o)
{
    const auto& [ec, r] = o;
    return ec || r.committed;
}

} // namespace colock::detail

#endif
