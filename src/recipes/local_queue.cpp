#include "recipes/local_queue.hpp"

#include "consul/client_impl.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace colock::detail {

namespace asio = boost::asio;

namespace {
struct waiter {
    explicit waiter(asio::any_io_executor ex) : wake(ex, std::chrono::steady_clock::time_point::max()) {}
    asio::steady_timer wake; // cancelled when the turn is granted
    bool granted = false;
    bool gone = false; // the waiting coroutine was cancelled
};
} // namespace

struct local_queue_state {
    explicit local_queue_state(asio::any_io_executor e) : ex(std::move(e)) {}
    struct key_line {
        bool taken = false;
        std::deque<std::shared_ptr<waiter>> waiters;
    };
    asio::any_io_executor ex;
    std::unordered_map<std::string, key_line> lines;

    void pass_on(const std::string& key)
    {
        auto it = lines.find(key);
        if (it == lines.end())
            return;
        auto& line = it->second;
        while (!line.waiters.empty()) {
            auto w = std::move(line.waiters.front());
            line.waiters.pop_front();
            if (w->gone)
                continue;
            w->granted = true;
            w->wake.cancel();
            return; // still taken, now by w
        }
        lines.erase(it);
    }
};

local_turn::local_turn(std::shared_ptr<local_queue_state> st, std::string key) noexcept
    : state_(std::move(st)), key_(std::move(key))
{
}

local_turn::~local_turn() { state_->pass_on(key_); }

local_queue::local_queue(asio::any_io_executor ex) : state_(std::make_shared<local_queue_state>(std::move(ex))) {}

std::unique_ptr<local_turn> local_queue::try_enter(const std::string& key)
{
    auto& line = state_->lines[key];
    if (line.taken)
        return nullptr;
    line.taken = true;
    return std::make_unique<local_turn>(state_, key);
}

asio::awaitable<std::tuple<error_code, std::unique_ptr<local_turn>>> local_queue::enter(std::string key)
{
    if (auto turn = try_enter(key))
        co_return std::tuple{error_code{}, std::move(turn)};
    auto st = state_;
    auto w = std::make_shared<waiter>(st->ex);
    st->lines[key].waiters.push_back(w);
    co_await w->wake.async_wait(asio::as_tuple(asio::use_awaitable));
    auto turn = w->granted ? std::make_unique<local_turn>(st, key) : nullptr;
    auto cs = co_await asio::this_coro::cancellation_state;
    if (cs.cancelled() != asio::cancellation_type::none || !turn) {
        w->gone = true; // a turn granted at the same moment passes on when `turn` is destroyed
        co_return std::tuple{make_error_code(asio::error::operation_aborted), std::unique_ptr<local_turn>{}};
    }
    co_return std::tuple{error_code{}, std::move(turn)};
}

std::size_t local_queue::waiting(const std::string& key) const
{
    auto it = state_->lines.find(key);
    if (it == state_->lines.end())
        return 0;
    return static_cast<std::size_t>(
        std::count_if(it->second.waiters.begin(), it->second.waiters.end(), [](const auto& w) { return !w->gone; }));
}

} // namespace colock::detail

namespace colock::consul::detail {

colock::detail::local_queue& client_impl::local_locks()
{
    if (!local_locks_)
        local_locks_ = std::make_shared<colock::detail::local_queue>(executor);
    return *local_locks_;
}

} // namespace colock::consul::detail
