#ifndef COLOCK_ELECTION_HPP
#define COLOCK_ELECTION_HPP

#include <colock/consul/client.hpp>
#include <colock/detail/initiate.hpp>
#include <colock/election_options.hpp>
#include <colock/error.hpp>

#include <boost/asio/deferred.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace colock {

namespace detail {
struct election_impl;
}

/// Leader election on one Consul key, built on colock::lock: the candidate that holds the lock
/// leads, and the key's value says what the leader wants others to know (e.g. its address).
/// Keys are Go `api.Lock` keys, so `consul lock` and Go clients see the same leader.
///
/// - campaign() waits until this candidate leads; fencing_token() numbers its term (it rises
///   strictly from one term to the next). Pass it to whatever the leader writes to.
/// - proclaim() changes the value while leading, without a new term: same session, same LockIndex,
///   same fencing token.
/// - lost() completes when leadership ends without resign(): session invalidated or expired, the
///   key released or deleted by someone else (as lock::lost()). The object is then not leading and
///   may campaign again.
/// - leader() reads who leads; observe() follows it, for anyone (leading or not).
///
/// Leadership is a lease: a leader paused past its session's TTL may act after a successor was
/// elected. Only the fencing token, checked by the resource, stops such a stale leader.
///
/// Thread safety: as the lock (operations and accessors from any thread). The client must
/// outlive the election. Destroying a leading election resigns in the background; destroying it
/// cancels a pending campaign() and observe().
class election {
public:
    election(consul::client& c, std::string key, election_options opts = {});
    election(const election&) = delete;
    election& operator=(const election&) = delete;
    ~election();

    /// Asynchronously waits until this candidate leads: it holds the key (lock flags, our session)
    /// with `value` as the key's value. Signature: void(error_code).
    /// Errors: errc::already_held (already leading), errc::operation_in_progress (a campaign() is
    /// pending), errc::conflict (the key is not a lock), errors as lock::acquire().
    /// Cancellation: as lock::acquire(): terminal, partial and total; a cancelled campaign never
    /// leaves this candidate leading (if its write won the race, it resigns before completing with
    /// operation_aborted).
    template <boost::asio::completion_token_for<void(error_code)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto campaign(std::string value, Token&& token = {})
    {
        return colock::detail::initiate<void(error_code)>(
            executor_, std::forward<Token>(token),
            [this](auto h, std::string v) { campaign_impl(std::move(v), std::move(h)); }, std::move(value));
    }

    /// Asynchronously replaces the value of the key while leading, keeping the term: one `/v1/txn`
    /// that checks that our session holds the key and re-locks it with the new value (a `lock` by
    /// the holding session keeps Session and LockIndex). The fencing token does not change; a later
    /// resign() (or the background release on destruction) writes this value. Signature: void(error_code).
    /// Errors: errc::not_held (not leading: nothing is written), errc::lock_lost (the key turned out
    /// not to be ours any more: nothing is written by a session that does not hold the key; if the
    /// key is ours in a newer term, e.g. taken over by another object on the same session, that is
    /// reported after the write), errc::operation_in_progress (a proclaim() is pending), request errors
    /// (errc::indeterminate_write: the value may or may not have been written; resign() then writes
    /// the previous value).
    /// Cancellation: terminal, before the write is sent (nothing written, operation_aborted). The
    /// write itself is not abandoned: its outcome is waited for (at most the client's
    /// request_timeout) and reported.
    template <boost::asio::completion_token_for<void(error_code)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto proclaim(std::string value, Token&& token = {})
    {
        return colock::detail::initiate<void(error_code)>(
            executor_, std::forward<Token>(token),
            [this](auto h, std::string v) { proclaim_impl(std::move(v), std::move(h)); }, std::move(value));
    }

    /// Asynchronously stops leading: releases the key (writing the last proclaimed value and the lock
    /// flags) so that another candidate can win. Signature: void(error_code).
    /// Errors: errc::not_held when not leading, including after a loss.
    /// Cancellation: terminal; not leading from the call on, a release already sent completes in the
    /// background (as lock::release()).
    template <boost::asio::completion_token_for<void(error_code)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto resign(Token&& token = {})
    {
        return colock::detail::initiate<void(error_code)>(
            executor_, std::forward<Token>(token), [this](auto h) { resign_impl(std::move(h)); });
    }

    /// Asynchronously reads who leads now (a `?consistent` read of the key). Completes with an empty
    /// optional when nobody leads (no key, or a key no session holds).
    /// Signature: void(error_code, std::optional<leader_info>).
    /// Errors: errc::conflict (the key exists with other flags: not an election), request errors.
    /// Cancellation: total (a read: nothing changes).
    template <boost::asio::completion_token_for<void(error_code, std::optional<leader_info>)> Token =
                  boost::asio::deferred_t>
    [[nodiscard]] auto leader(Token&& token = {})
    {
        return colock::detail::initiate<void(error_code, std::optional<leader_info>)>(
            executor_, std::forward<Token>(token), [this](auto h) { leader_impl(std::move(h)); });
    }

    /// Asynchronously follows the leadership. The first call completes at once with the current
    /// state; each later call completes with the next state that differs (session, lock_index or
    /// value) from the last one this object delivered, "nobody leads" (an empty optional) included.
    /// Signature: void(error_code, std::optional<leader_info>).
    /// It follows the key with blocking queries (a consul::kv_watch owned by this object) and Consul
    /// reports only the latest state: states that last less than about one round trip (a quick
    /// resign-and-win, two proclaims in a row) may be merged. What is delivered is an in-order
    /// subsequence of the true history that always ends at the current state.
    /// Errors: errc::conflict (the key has other flags), errc::operation_in_progress (an observe() is
    /// pending), request errors that retrying cannot fix (e.g. HTTP 403); transient ones are retried
    /// with backoff (bound the wait with a timeout if the agent may stay unreachable).
    /// Cancellation: total; the query in flight is abandoned at once and the next call continues from
    /// the last state delivered.
    template <boost::asio::completion_token_for<void(error_code, std::optional<leader_info>)> Token =
                  boost::asio::deferred_t>
    [[nodiscard]] auto observe(Token&& token = {})
    {
        return colock::detail::initiate<void(error_code, std::optional<leader_info>)>(
            executor_, std::forward<Token>(token), [this](auto h) { observe_impl(std::move(h)); });
    }

    /// Asynchronously waits until the current term ends and says why: exactly lock::lost().
    /// Signature: void(error_code ec, error_code reason): `ec` is set only when the wait fails
    /// (operation_aborted when cancelled); `reason` is errc::lock_lost, errc::session_invalidated,
    /// errc::session_expired, a request error that makes leadership unverifiable, or errc::not_held
    /// after our own resign(). When not leading it completes at once with the reason the last term
    /// ended. Cancellation: total (the wait only).
    template <boost::asio::completion_token_for<void(error_code, error_code)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto lost(Token&& token = {})
    {
        return colock::detail::initiate<void(error_code, error_code)>(
            executor_, std::forward<Token>(token), [this](auto h) { lost_impl(std::move(h)); });
    }

    /// True while leading (as lock::is_held(): the session's fail-safe deadline decides too).
    bool is_leader() const noexcept;
    /// The fencing token of the current term (the ModifyIndex of the winning write; proclaim()
    /// keeps it); 0 when not leading.
    std::uint64_t fencing_token() const noexcept;
    const std::string& key() const noexcept;
    const election_options& options() const noexcept;

private:
    void campaign_impl(std::string value, boost::asio::any_completion_handler<void(error_code)> h);
    void proclaim_impl(std::string value, boost::asio::any_completion_handler<void(error_code)> h);
    void resign_impl(boost::asio::any_completion_handler<void(error_code)> h);
    void leader_impl(boost::asio::any_completion_handler<void(error_code, std::optional<leader_info>)> h);
    void observe_impl(boost::asio::any_completion_handler<void(error_code, std::optional<leader_info>)> h);
    void lost_impl(boost::asio::any_completion_handler<void(error_code, error_code)> h);

    boost::asio::any_io_executor executor_;
    std::shared_ptr<detail::election_impl> impl_;
};

} // namespace colock

#endif
