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

    // Key memory, most recently used first.
    using memory_list = std::list<std::pair<std::string, local_queue::key_state>>;
    memory_list memory;
    std::unordered_map<std::string, memory_list::iterator> memory_index;

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
        if (auto it = st->lines.find(key); it != st->lines.end()) {
            auto& waiters = it->second.waiters;
            waiters.erase(std::remove(waiters.begin(), waiters.end(), w), waiters.end());
        }
        co_return std::tuple{make_error_code(asio::error::operation_aborted), std::unique_ptr<local_turn>{}};
    }
    co_return std::tuple{error_code{}, std::move(turn)};
}

void local_queue::remember(const std::string& key, std::optional<consul::kv_entry> entry, std::uint64_t index)
{
    auto& st = *state_;
    key_state ks;
    ks.entry = std::move(entry);
    ks.index = index;
    if (auto it = st.memory_index.find(key); it != st.memory_index.end()) {
        it->second->second = std::move(ks);
        st.memory.splice(st.memory.begin(), st.memory, it->second);
        return;
    }
    st.memory.emplace_front(key, std::move(ks));
    st.memory_index.emplace(key, st.memory.begin());
    if (st.memory.size() > memory_capacity) {
        st.memory_index.erase(st.memory.back().first);
        st.memory.pop_back();
    }
}

std::optional<local_queue::key_state> local_queue::recall(const std::string& key)
{
    auto& st = *state_;
    auto it = st.memory_index.find(key);
    if (it == st.memory_index.end())
        return std::nullopt;
    st.memory.splice(st.memory.begin(), st.memory, it->second);
    return it->second->second;
}

void local_queue::forget(const std::string& key)
{
    auto& st = *state_;
    if (auto it = st.memory_index.find(key); it != st.memory_index.end()) {
        st.memory.erase(it->second);
        st.memory_index.erase(it);
    }
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
