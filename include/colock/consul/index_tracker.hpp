#ifndef COLOCK_CONSUL_INDEX_TRACKER_HPP
#define COLOCK_CONSUL_INDEX_TRACKER_HPP

#include <cstdint>

namespace colock::consul {

/// Consul's rules for the `index` of successive blocking queries, as a plain value type:
/// - the first query sends 0 (a plain read that answers at once);
/// - then each query sends the index of the previous reply;
/// - a reply whose index went backwards (snapshot restore, reaped tombstone, restarted dev agent)
///   is new data: adopt its index, which restarts the sequence from what the server has now;
/// - after a blocking round, never send 0 (a server answering index 0 would make that a hot loop): send 1.
class index_tracker {
public:
    /// The index to send with the next query.
    std::uint64_t next_index() const noexcept
    {
        if (!seen_)
            return 0;
        return last_ == 0 ? 1 : last_;
    }

    /// Records a reply's index. Returns true when the result must be treated as changed: the first
    /// reply, or an index different from the previous one (in either direction).
    bool on_reply(std::uint64_t reply_index) noexcept
    {
        const bool changed = !seen_ || reply_index != last_;
        regressed_ = seen_ && reply_index < last_;
        seen_ = true;
        last_ = reply_index;
        return changed;
    }

    /// True when the last reply's index was lower than the one before it.
    bool regressed() const noexcept { return regressed_; }

    /// Forgets everything: the next query is a plain read.
    void reset() noexcept { *this = index_tracker{}; }

    std::uint64_t last_index() const noexcept { return last_; }

private:
    std::uint64_t last_ = 0;
    bool seen_ = false;
    bool regressed_ = false;
};

} // namespace colock::consul

#endif
