#ifndef COLOCK_SRC_SANSIO_SEMAPHORE_RECORD_HPP
#define COLOCK_SRC_SANSIO_SEMAPHORE_RECORD_HPP

// The decisions of colock::semaphore, without I/O: reading a snapshot of the prefix the way Go's
// api.Semaphore does (the `.lock` record, the live sessions), pruning dead holders, and deciding
// whether to take a slot, wait, or fail.

#include <colock/consul/kv.hpp>
#include <colock/consul/txn.hpp>
#include <colock/error.hpp>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace colock::detail {

// The JSON value of `<prefix>/.lock`: {"Limit": N, "Holders": {"<session id>": true, ...}}.
struct semaphore_record {
    std::uint32_t limit = 0;
    std::set<std::string> holders; // sorted, as Go's encoding/json writes map keys

    friend bool operator==(const semaphore_record&, const semaphore_record&) = default;
};

// Decodes a record; an empty value (absent key, or JSON null) is an empty record with `local_limit`.
// Errors: errc::bad_response for anything that is not such an object.
error_code decode_semaphore_record(std::string_view value, std::uint32_t local_limit, semaphore_record& out);
std::string encode_semaphore_record(const semaphore_record& r);

// What a list of `<prefix>/` says about the semaphore.
struct semaphore_snapshot {
    std::optional<consul::kv_entry> record_entry; // `<prefix>/.lock`, when it exists
    std::set<std::string> live_sessions;          // sessions holding some key under the prefix
};

// `prefix` without its trailing '/'. Entries outside `<prefix>/` are ignored.
semaphore_snapshot make_semaphore_snapshot(const std::vector<consul::kv_entry>& entries, std::string_view prefix);

// The step an acquisition takes after reading a snapshot.
struct semaphore_decision {
    enum class kind {
        take,           // write `record` with check-and-set on `cas_index` (0: create the key)
        wait,           // every slot is taken by a live holder
        already_holder, // our session is in the record (an earlier write of unknown outcome won)
        failed,         // `error`: conflict, limit_conflict or bad_response
    };
    kind what = kind::wait;
    std::uint64_t cas_index = 0;
    std::string record;       // for take: the new JSON value (pruned, with us added)
    std::size_t live_holders = 0;
    std::uint32_t record_limit = 0; // the limit the record names (for a limit_conflict message)
    error_code error;
};

semaphore_decision decide_semaphore_acquire(const semaphore_snapshot& snap, std::uint32_t limit, std::string_view sid);

// The quick path of an acquisition that knows the record as its own last write left it (e.g. its
// release): take a slot at once, in the transaction that writes the contender key, when the record
// has room even counting every listed holder as alive. The check-and-set catches any change since.
std::optional<semaphore_decision> decide_from_own_write(const consul::kv_entry& record_entry, std::uint32_t limit,
                                                        std::string_view sid);

// Whether a holder still holds its slot: the record is ours to read, lists our session, and our
// session still holds a key under the prefix (else any contender may prune us at any moment).
enum class semaphore_hold { held, lost, unreadable };
semaphore_hold check_semaphore_hold(const semaphore_snapshot& snap, std::uint32_t limit, std::string_view sid);

// For release: the record without `sid` and the index to check-and-set against; empty when `sid`
// is not in the record (nothing to remove) or the record cannot be read.
struct semaphore_removal {
    std::uint64_t cas_index = 0;
    std::string record;
};
std::optional<semaphore_removal> semaphore_record_without(const std::optional<consul::kv_entry>& record_entry,
                                                          std::uint32_t limit, std::string_view sid);

// Why a semaphore write rolled back: no error when our check-and-set lost a race (read again and
// retry), HTTP 403 when an ACL denies the write, errc::conflict otherwise (never retried at once).
error_code semaphore_rollback_error(const consul::txn_result& r);

} // namespace colock::detail

#endif
