#ifndef COLOCK_SEMAPHORE_HPP
#define COLOCK_SEMAPHORE_HPP

#include <colock/consul/client.hpp>
#include <colock/consul/session_id.hpp>
#include <colock/detail/initiate.hpp>
#include <colock/error.hpp>
#include <colock/semaphore_options.hpp>

#include <boost/asio/deferred.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace colock {

namespace detail {
struct semaphore_impl;
}

/// A counting semaphore: at most `limit` holders at once across every process that uses the same
/// prefix. Layout, flags and coordination record are those of Consul's Go `api.Semaphore` (and
/// `consul lock -n`), so colock and Go contenders share one semaphore:
/// - each contender writes `<prefix>/<session id>` acquired with its session (it vanishes with the
///   session when the session has `delete` behaviour);
/// - `<prefix>/.lock` holds `{"Limit": N, "Holders": {"<session id>": true, ...}}` and changes only
///   by check-and-set. A holder whose session no longer holds any key under the prefix is dead and
///   is pruned by the next contender that writes the record.
///
/// The **fencing token** of a slot is the ModifyIndex of the `.lock` write that added this holder:
/// unique per acquisition on the prefix, and larger than the token of every acquisition that
/// completed before this one began. With limit 1 it fences like a lock's token (a resource refuses
/// tokens smaller than the largest it accepted). With limit > 1 it tells holders apart but gives no
/// fence by order: a holder with a smaller token may still hold its slot beside newer ones, so
/// "refuse smaller tokens" would refuse valid holders. A resource shared by N holders checks a
/// token against the holders it admitted instead (and forgets a token at that holder's release).
///
/// While held, lost() completes as soon as the slot is gone: our session was removed from the
/// holders (pruned or by hand), the record was deleted or replaced, the session was invalidated or
/// its fail-safe deadline passed without a renewal.
///
/// Thread safety: as the lock (operations and accessors from any thread). The client must
/// outlive the semaphore. Destroying a held semaphore releases its slot in the background;
/// destroying it while acquire() is pending cancels that acquire().
class semaphore {
public:
    using clock = std::chrono::steady_clock;

    /// `prefix` names the semaphore (a trailing '/' is ignored); `limit` must be positive and the
    /// same for every contender (checked by acquire()).
    semaphore(consul::client& c, std::string prefix, std::uint32_t limit, semaphore_options opts = {});
    semaphore(const semaphore&) = delete;
    semaphore& operator=(const semaphore&) = delete;
    ~semaphore();

    /// Asynchronously waits until this object holds a slot. Signature: void(error_code).
    /// Errors: errc::already_held, errc::invalid_argument (empty prefix or zero limit),
    /// errc::conflict (`<prefix>/.lock` or our contender key has other flags: not a semaphore),
    /// errc::limit_conflict (the record's limit differs from ours), errc::operation_in_progress,
    /// errc::session_mismatch (semaphore_options::session was made for another datacenter,
    /// namespace, partition or token than semaphore_options::request), the error of the session's
    /// creation, the last request error after semaphore_options::max_consecutive_errors failures.
    /// Cancellation: terminal, partial and total. A cancelled acquire never leaves a slot held:
    /// if its record write won, it is undone before completing with operation_aborted. As for
    /// colock::lock, a cancellation during that write takes effect once its outcome is known and any
    /// undo has ended: usually one round trip, minutes with an agent that stops answering.
    template <boost::asio::completion_token_for<void(error_code)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto acquire(Token&& token = {})
    {
        return colock::detail::initiate<void(error_code)>(
            executor_, std::forward<Token>(token), [this](auto h) { acquire_impl(std::move(h)); });
    }

    /// Asynchronously tries once: completes with true when a slot is now held, false when all
    /// slots are taken. Signature: void(error_code, bool). Errors and cancellation as acquire().
    template <boost::asio::completion_token_for<void(error_code, bool)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto try_acquire(Token&& token = {})
    {
        return colock::detail::initiate<void(error_code, bool)>(
            executor_, std::forward<Token>(token), [this](auto h) { try_acquire_impl(std::move(h)); });
    }

    /// Asynchronously gives the slot back (removes us from the holders, deletes our contender key).
    /// Signature: void(error_code). Errors: errc::not_held when not held (also after a loss).
    template <boost::asio::completion_token_for<void(error_code)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto release(Token&& token = {})
    {
        return colock::detail::initiate<void(error_code)>(
            executor_, std::forward<Token>(token), [this](auto h) { release_impl(std::move(h)); });
    }

    /// Asynchronously waits until the current hold ends and says why; as lock::lost().
    /// Signature: void(error_code ec, error_code reason).
    template <boost::asio::completion_token_for<void(error_code, error_code)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto lost(Token&& token = {})
    {
        return colock::detail::initiate<void(error_code, error_code)>(
            executor_, std::forward<Token>(token), [this](auto h) { lost_impl(std::move(h)); });
    }

    /// True while a slot is held (and the session's fail-safe deadline has not passed).
    bool is_held() const noexcept;
    /// The fencing token of the current slot; 0 when not held.
    std::uint64_t fencing_token() const noexcept;
    /// The session of the current slot, while held.
    std::optional<consul::session_id> session_id() const noexcept;
    /// Until when the slot can be trusted without news from Consul; time_point::min() when not held.
    clock::time_point deadline() const noexcept;
    /// The prefix without a trailing '/'.
    const std::string& prefix() const noexcept;
    std::uint32_t limit() const noexcept;
    const semaphore_options& options() const noexcept;

private:
    void acquire_impl(boost::asio::any_completion_handler<void(error_code)> h);
    void try_acquire_impl(boost::asio::any_completion_handler<void(error_code, bool)> h);
    void release_impl(boost::asio::any_completion_handler<void(error_code)> h);
    void lost_impl(boost::asio::any_completion_handler<void(error_code, error_code)> h);

    boost::asio::any_io_executor executor_;
    std::shared_ptr<detail::semaphore_impl> impl_;
};

} // namespace colock

#endif
