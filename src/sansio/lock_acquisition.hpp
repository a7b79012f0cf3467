#ifndef COLOCK_SRC_SANSIO_LOCK_ACQUISITION_HPP
#define COLOCK_SRC_SANSIO_LOCK_ACQUISITION_HPP

// The decisions of one lock acquisition, without I/O: what to send next, and how to read each
// answer. The driver (src/lock.cpp) performs the action next() names and feeds the outcome back.
//
// - Writes are /v1/txn transactions guarded by what we last saw of the key: absent ->
//   [check-not-exists, lock]; free with our flags -> [check-index, lock]; held by our own session
//   without us holding it (e.g. a hold abandoned earlier) -> [check-index, unlock, lock], which
//   gives a fresh ModifyIndex, hence a fresh fencing token. The guard means a key with other flags is
//   never overwritten: a failed check leads to a read, and other flags to errc::conflict.
// - The fencing token is the ModifyIndex of the committed `lock` operation.
// - A write whose outcome is unknown (connection lost after sending) is resolved by a ?consistent
//   read: our session in the key means the write was applied (its ModifyIndex is then a valid token:
//   at least the acquiring write's, below any later holder's).
// - Rolled back because of lock-delay: back off (short, growing, jittered) and write again.
//   Because another session holds it: wait for the key to change.

#include <colock/consul/kv.hpp>
#include <colock/consul/session_id.hpp>
#include <colock/consul/txn.hpp>
#include <colock/error.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace colock::detail {

struct lock_acquisition_params {
    lock_acquisition_params() {}
    std::string key;
    std::string value;
    std::uint64_t flags = 0;
    bool try_once = false;               ///< give up instead of waiting
    unsigned max_consecutive_errors = 8; ///< 0: never give up
};

/// What the driver must do next.
enum class acquire_step {
    write,          ///< send ops() as one transaction, then on_write()
    read,           ///< read the key (consistent_read() says how), then on_read()
    wait_change,    ///< wait for the key to change (blocking query), then on_change()
    backoff,        ///< wait delay(), then on_backoff_done()
    renew_session,  ///< make sure the session is live (it may have to be re-created), then on_session()
    held,           ///< done: token() is the fencing token
    not_acquired,   ///< done (try once): someone else holds the key, or it is under lock-delay
    failed,         ///< done: error()
};

class lock_acquisition {
public:
    lock_acquisition(lock_acquisition_params params, consul::session_id session);

    /// What is known about the key before starting (from earlier holds), if anything.
    void start(std::optional<std::optional<consul::kv_entry>> known_key, std::uint64_t known_index);

    acquire_step next() const noexcept { return step_; }

    // The details of the current step.
    const std::vector<consul::txn_op>& ops() const noexcept { return ops_; }
    bool consistent_read() const noexcept { return resolving_; }
    /// A write whose outcome is unknown was sent and no read has settled it: the key may be held
    /// by our session. A driver that stops now must release it (an unlock by a non-holder is harmless).
    bool unresolved() const noexcept { return unresolved_; }
    /// The delay of a backoff step; `unit_random` in [0, 1) supplies the jitter.
    std::chrono::milliseconds delay(double unit_random) const noexcept;
    std::uint64_t token() const noexcept { return token_; }
    error_code error() const noexcept { return error_; }
    /// Why the current backoff: true = lock-delay, false = after an error.
    bool backing_off_for_lock_delay() const noexcept { return lock_delay_backoff_; }

    /// What we know of the key (for the wait's blocking query and for the next acquisition).
    bool key_known() const noexcept { return known_; }
    const std::optional<consul::kv_entry>& key_entry() const noexcept { return entry_; }
    std::uint64_t key_index() const noexcept { return index_; }
    const consul::session_id& session() const noexcept { return session_; }

    // Outcomes.
    void on_write(error_code ec, const consul::txn_result& result);
    void on_read(error_code ec, const std::optional<consul::kv_entry>& entry, std::uint64_t index);
    void on_change(error_code ec, const std::optional<consul::kv_entry>& entry, std::uint64_t index);
    void on_backoff_done();
    void on_session(error_code ec, const consul::session_id& session);

    /// Tuning of the backoffs (defaults match lock_options).
    void set_backoff(std::chrono::milliseconds retry_initial, std::chrono::milliseconds retry_max,
                     std::chrono::milliseconds lock_delay_max) noexcept;

private:
    void decide();
    void fail(error_code ec);
    void count_error(error_code ec, acquire_step after_backoff);
    void back_off(acquire_step then);

    lock_acquisition_params params_;
    consul::session_id session_;
    acquire_step step_ = acquire_step::read;
    std::vector<consul::txn_op> ops_;
    bool known_ = false;
    std::optional<consul::kv_entry> entry_;
    std::uint64_t index_ = 0;
    bool resolving_ = false; // the last write's outcome is unknown; the next read decides
    bool remembered_ = false; // the state comes from memory, not from Consul in this acquisition
    bool unresolved_ = false; // see unresolved()
    bool lock_delay_backoff_ = false;
    bool session_refused_ = false;
    acquire_step after_backoff_ = acquire_step::read;
    unsigned errors_ = 0;
    unsigned lock_delay_tries_ = 0;
    std::uint64_t token_ = 0;
    error_code error_;
    std::chrono::milliseconds retry_initial_{50};
    std::chrono::milliseconds retry_max_{2000};
    std::chrono::milliseconds lock_delay_max_{250};
};

} // namespace colock::detail

#endif
