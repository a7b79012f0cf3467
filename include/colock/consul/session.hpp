#ifndef COLOCK_CONSUL_SESSION_HPP
#define COLOCK_CONSUL_SESSION_HPP

#include <colock/consul/client.hpp>
#include <colock/consul/session_id.hpp>
#include <colock/consul/session_options.hpp>
#include <colock/detail/initiate.hpp>
#include <colock/error.hpp>

#include <boost/asio/deferred.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

namespace colock::consul {

namespace detail {
struct session_impl;
struct client_impl;
}

/// One managed Consul session: created on demand, renewed in the background, declared lost as soon
/// as it may be gone, destroyed on close.
///
/// - Trust window: a session is trusted for its TTL after the *send* time of each successful
///   create or renewal (Consul never expires it sooner). A session bound to health checks (the
///   default binds the agent's serfHealth) can be invalidated by a check at any moment, and its keys
///   go to others once its lock-delay has passed: it is trusted for min(TTL, lock-delay) only. With
///   lock-delay 0 and checks, nothing can be promised by time: prefer sessions without checks
///   (`node_checks` = empty list) when the lock-delay is 0.
/// - Renewal runs at half the window (with jitter) and adopts a larger TTL Consul returns. A failed
///   renewal is retried quickly (min(1 s, window/5)).
/// - Loss: a renewal answered 404 means Consul invalidated the session: lost at once
///   (errc::session_invalidated). Fail-safe: when the window (minus `safety_margin`) has passed
///   since the send time of the last successful renewal, lost (errc::session_expired), decided by a
///   local timer even if every request hangs. Lost sessions are destroyed in the background.
/// - A session without a TTL is never renewed and only a 404 on use can reveal its loss.
/// - After a loss, the next start() creates a new session (a new id and generation()). close() or
///   client::cancel() while a creation is in flight makes it fail; the session it created is destroyed.
/// - Place and credentials: the session is created, renewed and destroyed with the `request` options
///   it was constructed with (datacenter, namespace, partition, ACL token; empty fields: the client's
///   defaults). Their `timeout` and `diag` are per call and not kept. A session lives in one
///   datacenter (and namespace and partition): a lock, semaphore or election given this session
///   refuses to acquire with errc::session_mismatch when its own request options name another
///   place or token (see request()).
///
/// Thread safety: as the client (operations and accessors from any thread). The client must outlive the session. Destroying the object stops
/// renewal and destroys the Consul session in the background (best effort).
class session {
public:
    using clock = std::chrono::steady_clock;

    /// A session with `opts`, whose create, renew and destroy requests carry `request`'s datacenter,
    /// namespace, partition and token (empty fields: the client's defaults).
    session(client& c, session_options opts = {}, request_options request = {});
    /// The same, from the client's implementation (colock's own use: the client's shared session).
    session(const std::shared_ptr<detail::client_impl>& c, session_options opts, request_options request = {});
    session(const session&) = delete;
    session& operator=(const session&) = delete;
    ~session();

    /// Asynchronously makes sure a live session exists, creating one if needed (concurrent callers
    /// share one creation). Signature: void(error_code, session_id).
    /// Cancellation: terminal, of this wait only; a creation already sent still completes and the
    /// session is then kept for the next caller.
    template <boost::asio::completion_token_for<void(error_code, session_id)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto start(Token&& token = {})
    {
        return colock::detail::initiate<void(error_code, session_id)>(
            executor_, std::forward<Token>(token), [this](auto h) { start_impl(std::move(h)); });
    }

    /// Asynchronously waits until the current session is lost; completes with the reason
    /// (errc::session_invalidated or errc::session_expired; errc::not_held after close(),
    /// operation_aborted after client::cancel()). When no session is live it completes at once
    /// (through the executor) with the reason the last one ended, or errc::not_held if there never
    /// was one. Signature: void(error_code). Cancellation: total (the wait only).
    template <boost::asio::completion_token_for<void(error_code)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto lost(Token&& token = {})
    {
        return colock::detail::initiate<void(error_code)>(
            executor_, std::forward<Token>(token), [this](auto h) { lost_impl(std::move(h)); });
    }

    /// Asynchronously renews the current session now, instead of at its next scheduled renewal:
    /// when Consul refused to use it (e.g. "invalid session"), this finds out at once whether it
    /// is gone. Completes with errc::session_invalidated (and the session is then lost) when Consul
    /// no longer knows it, errc::not_held when no session is live. Signature: void(error_code).
    /// Cancellation: terminal (the wait; a renewal already sent still counts).
    template <boost::asio::completion_token_for<void(error_code)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto renew_now(Token&& token = {})
    {
        return colock::detail::initiate<void(error_code)>(
            executor_, std::forward<Token>(token), [this](auto h) { renew_now_impl(std::move(h)); });
    }

    /// Asynchronously stops renewal and destroys the current session in Consul (keys it holds are
    /// released, with lock-delay: release locks first). Waiters on lost() complete with
    /// errc::not_held. Signature: void(error_code). Cancellation: terminal; the destroy may still be sent.
    template <boost::asio::completion_token_for<void(error_code)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto close(Token&& token = {})
    {
        return colock::detail::initiate<void(error_code)>(
            executor_, std::forward<Token>(token), [this](auto h) { close_impl(std::move(h)); });
    }

    /// The current session's id, if one is live.
    std::optional<session_id> id() const noexcept;
    bool is_live() const noexcept;
    /// Counts sessions created by this object; changes when a lost session is replaced.
    std::uint64_t generation() const noexcept;
    /// The fail-safe deadline: past it the session must be assumed gone. time_point::min() if none.
    /// is_live() is false from this moment on, even before the watchdog has run.
    clock::time_point deadline() const noexcept;
    /// The TTL in force (Consul's answer to the last renewal).
    std::chrono::milliseconds ttl() const noexcept;
    /// How long each successful renewal keeps the session trusted: the TTL, or min(TTL, lock-delay)
    /// for a session bound to health checks. Zero for a session without a TTL.
    std::chrono::milliseconds trust_window() const noexcept;
    const session_options& options() const noexcept;
    /// The request options of the session's own requests (create, renew, destroy), as constructed
    /// but without `timeout` and `diag`.
    const request_options& request() const noexcept;
    /// Subtracted from the fail-safe deadline to cover clock-rate error between client and server.
    /// Default: window/20.
    void set_safety_margin(std::chrono::milliseconds margin) noexcept;

    const std::shared_ptr<detail::session_impl>& impl() const noexcept { return impl_; }

private:
    void start_impl(boost::asio::any_completion_handler<void(error_code, session_id)> h);
    void lost_impl(boost::asio::any_completion_handler<void(error_code)> h);
    void close_impl(boost::asio::any_completion_handler<void(error_code)> h);
    void renew_now_impl(boost::asio::any_completion_handler<void(error_code)> h);

    boost::asio::any_io_executor executor_;
    std::shared_ptr<detail::session_impl> impl_;
};

} // namespace colock::consul

#endif
