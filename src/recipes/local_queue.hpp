#ifndef COLOCK_SRC_RECIPES_LOCAL_QUEUE_HPP
#define COLOCK_SRC_RECIPES_LOCAL_QUEUE_HPP

// Local exclusion per key inside one client. Several lock objects of one client may share a Consul
// session, and Consul lets a session "acquire" a key it already holds: Consul alone cannot keep
// them apart. So a lock object first takes its key's local turn (first come, first served), then
// deals with Consul; the turn passes on when the object releases or loses the lock.

#include <colock/consul/kv.hpp>
#include <colock/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>

namespace colock::detail {

struct local_queue_state;

/// The right to deal with Consul for one key; handed to the next in line when destroyed.
class local_turn {
public:
    local_turn(std::shared_ptr<local_queue_state> st, std::string key) noexcept;
    local_turn(const local_turn&) = delete;
    local_turn& operator=(const local_turn&) = delete;
    ~local_turn();

private:
    std::shared_ptr<local_queue_state> state_;
    std::string key_;
};

class local_queue {
public:
    explicit local_queue(boost::asio::any_io_executor ex);

    /// The key's turn now, or null when someone else has it.
    std::unique_ptr<local_turn> try_enter(const std::string& key);

    /// Waits for the key's turn. Completes with operation_aborted when the calling coroutine is
    /// cancelled (a turn granted at the same moment is passed on).
    boost::asio::awaitable<std::tuple<error_code, std::unique_ptr<local_turn>>> enter(std::string key);

    /// Number of objects waiting for `key` (for tests).
    std::size_t waiting(const std::string& key) const;

    // What this client last knew of a key from its own writes and reads, so that the next acquirer
    // (the next in line, or a new lock object) starts with one guarded write instead of a failed
    // guess and a read. Only a hint: every write is guarded by the state it assumes. Bounded: the
    // least recently used keys are forgotten.
    struct key_state {
        std::optional<consul::kv_entry> entry; ///< empty: absent
        std::uint64_t index = 0;
    };
    void remember(const std::string& key, std::optional<consul::kv_entry> entry, std::uint64_t index);
    std::optional<key_state> recall(const std::string& key);
    void forget(const std::string& key);
    static constexpr std::size_t memory_capacity = 4096;

private:
    std::shared_ptr<local_queue_state> state_;
};

} // namespace colock::detail

#endif
