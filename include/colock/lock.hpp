#ifndef COLOCK_LOCK_HPP
#define COLOCK_LOCK_HPP

#include <colock/consul/client.hpp>
#include <colock/consul/session_id.hpp>
#include <colock/detail/initiate.hpp>
#include <colock/error.hpp>
#include <colock/lock_options.hpp>

#include <boost/asio/deferred.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace colock {

namespace detail {
struct lock_impl;
}

/// A distributed lock on one Consul key, compatible with Consul's Go `api.Lock` and `consul lock`.
///
/// - acquire() writes the key through one `/v1/txn` `lock` operation; the ModifyIndex of that very
///   write is the **fencing token**: it rises strictly across successive holders of the key (also
///   when the key is deleted and re-created). Pass it to any resource you protect and let the
///   resource refuse smaller tokens: a lease lock alone cannot stop a paused holder from acting late.
/// - While waiting, the lock follows the key with a blocking query (shared by all users of the key in
///   this client) and writes only when the key is free. Lock-delay after a holder's session was
///   invalidated is retried with short jittered backoff, not a fixed sleep.
/// - While held, lost() completes as soon as ownership is gone: the key changed hands, was released
///   with our session or deleted, the session was invalidated, or the session's fail-safe deadline
///   passed without a renewal (a local timer: loss is reported within the session's TTL even when
///   the network silently drops every packet). The lock is then "not held" again and can re-acquire.
/// - Several lock objects on one key in one client exclude each other, even on a shared session.
///
/// Thread safety: operations may be started from any thread, also concurrently on one lock object (a
/// second acquire while one is pending completes with errc::operation_in_progress); accessors are safe
/// from any thread; the lock's state lives on the client's strand. The client must outlive the lock. Destroying a held lock releases
/// it in the background; destroying it while acquire() is pending cancels that acquire().
class lock {
public:
    using clock = std::chrono::steady_clock;

    lock(consul::client& c, std::string key, lock_options opts = {});
    lock(const lock&) = delete;
    lock& operator=(const lock&) = delete;
    ~lock();

    /// Asynchronously waits until this object holds the lock. Signature: void(error_code).
    /// Errors: errc::already_held (held and not reentrant), errc::conflict (the key has other
    /// flags: not a lock), errc::operation_in_progress (another acquire() on this object is
    /// pending), errc::session_mismatch (lock_options::session was made for another datacenter,
    /// namespace, partition or token than lock_options::request), the error of the session's
    /// creation (e.g. HTTP 500 for a datacenter Consul does not know), the last request error after
    /// lock_options::max_consecutive_errors failures.
    /// Cancellation: terminal, partial and total, at once while waiting. The lock is never left held
    /// by a cancelled acquire: if its write won the race, the lock is released. The acquire waits
    /// for that (the write's outcome, then the release; usually one round trip), but never longer
    /// than the client's request_timeout after the cancellation: then it completes with
    /// operation_aborted and the rest goes on in the background (a new acquire of the key through
    /// this client waits until the key is free). client::cancel() and destroying the lock are
    /// cancellations too. A timeout is a cancellation.
    template <boost::asio::completion_token_for<void(error_code)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto acquire(Token&& token = {})
    {
        return colock::detail::initiate<void(error_code)>(
            executor_, std::forward<Token>(token), [this](auto h) { acquire_impl(std::move(h)); });
    }

    /// Asynchronously tries once: completes with true when the lock is now held, false when another
    /// session holds it or it is under lock-delay. Signature: void(error_code, bool).
    /// Errors and cancellation as acquire().
    template <boost::asio::completion_token_for<void(error_code, bool)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto try_acquire(Token&& token = {})
    {
        return colock::detail::initiate<void(error_code, bool)>(
            executor_, std::forward<Token>(token), [this](auto h) { try_acquire_impl(std::move(h)); });
    }

    /// Asynchronously releases one hold (the last one unlocks the key in Consul, writing the value
    /// and the lock flags). Signature: void(error_code).
    /// Errors: errc::not_held when not held, including after a loss (nothing to undo then).
    /// Cancellation: terminal; the lock is "not held" from the call on, and a release already sent
    /// completes in the background.
    template <boost::asio::completion_token_for<void(error_code)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto release(Token&& token = {})
    {
        return colock::detail::initiate<void(error_code)>(
            executor_, std::forward<Token>(token), [this](auto h) { release_impl(std::move(h)); });
    }

    /// Asynchronously waits until the current hold ends and says why. Signature:
    /// void(error_code ec, error_code reason): `ec` is set only when the wait itself fails
    /// (operation_aborted when it is cancelled); `reason` is why the hold ended: errc::lock_lost (the
    /// key changed hands, was released with our session or deleted; also when the session was
    /// destroyed and Consul released the key before a renewal noticed), errc::session_invalidated,
    /// errc::session_expired, a request error that makes ownership unverifiable (e.g. HTTP 403),
    /// errc::not_held after our own release(), operation_aborted when the client is cancelled.
    /// When not held it completes at once with the reason the last hold ended (errc::not_held if
    /// it was released or there was none), so a loss noticed before the call is still reported.
    /// Because a loss is a successful completion, `co_await (work() || lock.lost(use_awaitable))`
    /// stops the work as soon as ownership is gone. Cancellation: total (the wait only).
    template <boost::asio::completion_token_for<void(error_code, error_code)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto lost(Token&& token = {})
    {
        return colock::detail::initiate<void(error_code, error_code)>(
            executor_, std::forward<Token>(token), [this](auto h) { lost_impl(std::move(h)); });
    }

    /// True while held: acquired, not released, not lost, and the session's fail-safe deadline has
    /// not passed (the clock decides, even before the loss has been processed).
    bool is_held() const noexcept;
    /// The fencing token of the current hold (the ModifyIndex of the acquiring write); 0 when not held.
    std::uint64_t fencing_token() const noexcept;
    /// Number of holds (more than 1 only with lock_options::reentrant).
    unsigned hold_count() const noexcept;
    /// Consul's LockIndex of the current hold (it counts acquisitions of the key; another
    /// acquisition, even by the same session, changes it); 0 when not held.
    std::uint64_t lock_index() const noexcept;
    /// The session holding the lock, while held.
    std::optional<consul::session_id> session_id() const noexcept;
    /// Until when the hold can be trusted without news from Consul (the session's fail-safe
    /// deadline); time_point::min() when not held.
    clock::time_point deadline() const noexcept;
    const std::string& key() const noexcept;
    /// A copy of the options, with the value as last set by set_value(). Safe from any thread.
    lock_options options() const;
    /// Replaces lock_options::value: what the next acquire and the release of the current hold
    /// write into the key (a release retried in the background writes the newest value). It does not
    /// write the key itself.
    void set_value(std::string value);

private:
    void acquire_impl(boost::asio::any_completion_handler<void(error_code)> h);
    void try_acquire_impl(boost::asio::any_completion_handler<void(error_code, bool)> h);
    void release_impl(boost::asio::any_completion_handler<void(error_code)> h);
    void lost_impl(boost::asio::any_completion_handler<void(error_code, error_code)> h);

    boost::asio::any_io_executor executor_;
    std::shared_ptr<detail::lock_impl> impl_;
};

} // namespace colock

#endif
