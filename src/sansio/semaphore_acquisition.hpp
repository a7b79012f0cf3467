#ifndef COLOCK_SRC_SANSIO_SEMAPHORE_ACQUISITION_HPP
#define COLOCK_SRC_SANSIO_SEMAPHORE_ACQUISITION_HPP

// The decisions of one semaphore acquisition, without I/O (as lock_acquisition is for a lock), so
// that each can be tested alone. The driver (src/semaphore.cpp) performs the step next() names and
// feeds the outcome back; decide_semaphore_acquire judges each snapshot of the prefix.
//
// - A round begins with our contender key, written with a check-and-set of the record when our own
//   last write of it shows a free slot (the quick path), else with a get-tree of the prefix. Later
//   rounds list the prefix, or wait for it to change while every slot is taken.
// - A rolled-back contender write puts our session in doubt: a key named after it cannot be held by
//   another session.
// - A record write of unknown outcome is settled by a consistent list; if it won, we withdraw and
//   start over, for a fresh fencing token.

#include <colock/consul/kv.hpp>
#include <colock/consul/session_id.hpp>
#include <colock/consul/txn.hpp>
#include <colock/error.hpp>

#include "detail/backoff.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace colock::detail {

struct semaphore_acquisition_params {
    semaphore_acquisition_params() {}
    std::string prefix;  ///< without its trailing '/'
    std::uint32_t limit = 1;
    std::string value;   ///< of our contender key
    bool try_once = false;               ///< give up instead of waiting for a slot
    unsigned max_consecutive_errors = 8; ///< 0: never give up
    std::chrono::milliseconds retry_initial{50};
    std::chrono::milliseconds retry_max{2000};
};

/// What the driver must do next. Not lock_acquisition's acquire_step: a semaphore also withdraws
/// in the middle of an acquisition, and tells its writes apart (which may be abandoned).
enum class semaphore_step {
    write_quick,     ///< send ops() (contender key and record check-and-set), never abandoned, then on_write()
    write_contender, ///< send ops() (contender key and get-tree), then on_write()
    write_record,    ///< send ops() (record check-and-set), never abandoned, then on_write()
    list,            ///< list the prefix (consistent_list() says how), then on_list()
    wait_change,     ///< wait for the prefix to change from listing(), then on_change()
    withdraw,        ///< take session() out of the record and delete its contender key, then on_withdrawn()
    renew_session,   ///< ask Consul about the session, start one if it ended, then on_session()
    backoff,         ///< wait delay(), then on_backoff_done()
    held,            ///< done: hold held_record()
    not_acquired,    ///< done (try once): every slot is taken
    failed,          ///< done: error()
};

class semaphore_acquisition {
public:
    semaphore_acquisition(semaphore_acquisition_params params, consul::session_id session);

    /// `own_write`: the record as our own last write of it left it, if known (enables the quick path).
    void start(std::optional<consul::kv_entry> own_write);

    semaphore_step next() const noexcept { return step_; }

    // The details of the current step.
    const std::vector<consul::txn_op>& ops() const noexcept { return ops_; }
    /// A write's outcome is unknown (we may be in the record): the list must be consistent, and is
    /// not abandoned on cancellation.
    bool consistent_list() const noexcept { return resolving_; }
    /// The delay of a backoff step; `unit_random` in [0, 1) supplies the jitter.
    std::chrono::milliseconds delay(double unit_random) const noexcept;
    error_code error() const noexcept { return error_; }
    /// When failed because the record names another limit: that limit.
    std::optional<std::uint32_t> conflicting_limit() const noexcept { return conflicting_limit_; }
    /// For held: the record as our committed write left it (value and flags filled in: Consul does
    /// not echo them); its ModifyIndex is the fencing token.
    const consul::kv_entry& held_record() const noexcept { return held_; }
    const consul::session_id& session() const noexcept { return session_; }

    /// The prefix as last listed (the wait's starting point).
    bool listed() const noexcept { return listed_; }
    const std::vector<consul::kv_entry>& listing() const noexcept { return listing_; }
    std::uint64_t listing_index() const noexcept { return listing_index_; }

    /// An acquisition that ends without a slot must withdraw: a contender write was sent, so our
    /// contender key may exist, and with it our record entry (a record write of unknown outcome).
    bool withdraw_needed() const noexcept { return contender_sent_; }

    // Outcomes.
    void on_write(error_code ec, const consul::txn_result& result);
    void on_list(error_code ec, std::vector<consul::kv_entry> entries, std::uint64_t index);
    void on_change(error_code ec, std::vector<consul::kv_entry> entries, std::uint64_t index);
    /// `own_write`: the record as the withdrawal left it, if it wrote one.
    void on_withdrawn(error_code ec, std::optional<consul::kv_entry> own_write);
    void on_session(error_code ec, const consul::session_id& session);
    void on_backoff_done();
    /// The driver stopped waiting for the current step's outcome (cancellation): the acquisition
    /// ends with `why`. A request already sent may still be applied.
    void on_abandoned(error_code why);

private:
    void contend();
    void list();
    void take_listing(std::vector<consul::kv_entry> entries, std::uint64_t index);
    void decide();
    void hold(consul::kv_entry written, std::string record);
    void fail(error_code ec);
    bool count_error(error_code ec); // true: too many in a row, give up
    void back_off(semaphore_step then);

    semaphore_acquisition_params params_;
    consul::session_id session_;
    semaphore_step step_ = semaphore_step::write_contender;
    std::vector<consul::txn_op> ops_;
    std::string record_;                        // the record value the current record write sets
    std::optional<consul::kv_entry> own_write_; // not yet used for a quick path
    bool listed_ = false;
    std::vector<consul::kv_entry> listing_;
    std::uint64_t listing_index_ = 0;
    bool resolving_ = false;      // see consistent_list()
    bool contender_sent_ = false; // see withdraw_needed()
    semaphore_step after_backoff_ = semaphore_step::list;
    unsigned errors_ = 0;
    backoff delays_;
    consul::kv_entry held_;
    error_code error_;
    std::optional<std::uint32_t> conflicting_limit_;
};

} // namespace colock::detail

#endif
