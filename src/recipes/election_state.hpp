#ifndef COLOCK_SRC_RECIPES_ELECTION_STATE_HPP
#define COLOCK_SRC_RECIPES_ELECTION_STATE_HPP

// The election's decisions, without I/O: who leads according to a key, and what a proclaim
// transaction's answer means.

#include <colock/consul/kv.hpp>
#include <colock/consul/txn.hpp>
#include <colock/election_options.hpp>
#include <colock/error.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace colock::detail {

/// Who leads according to the key (absent: the key does not exist). Empty optional when no session
/// holds it; errc::conflict in `ec` when the key is not a lock (other flags).
struct leader_reading {
    error_code ec;
    std::optional<leader_info> leader;
};
leader_reading leader_of(const std::optional<consul::kv_entry>& key);

/// The transaction of a proclaim: write `value` only while `holder` holds `key`; a `lock` by the
/// holding session keeps Session and LockIndex.
std::vector<consul::txn_op> proclaim_ops(const std::string& key, const consul::session_id& holder,
                                         const std::string& value);

/// What the answer to proclaim_ops means for the term (`holder`, `term_lock_index`): success, or
/// errc::lock_lost (rolled back: the key is not ours; or written in another term), or
/// errc::bad_response (committed without the entry).
error_code proclaim_outcome(const consul::txn_result& r, const consul::session_id& holder,
                            std::uint64_t term_lock_index);

} // namespace colock::detail

#endif
