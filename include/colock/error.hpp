#ifndef COLOCK_ERROR_HPP
#define COLOCK_ERROR_HPP

#include <boost/system/error_code.hpp>

#include <string>
#include <type_traits>

namespace colock {

using boost::system::error_code;

/// Errors raised by colock itself (category "colock"). Values start at 1.
enum class errc {
    not_held = 1,           ///< release or an ownership-dependent call while not holding
    session_invalidated,    ///< Consul says the session is gone (renew 404, or invalidated)
    session_expired,        ///< fail-safe: a full TTL passed without a successful renew
    lock_lost,              ///< the lock key changed hands, was released by someone else, or was deleted
    bad_response,           ///< Consul's reply could not be decoded or broke the protocol
    request_timeout,        ///< a request passed its deadline without a complete reply
    indeterminate_write,    ///< a write was sent but its outcome is unknown (connection lost before the reply)
    invalid_argument,       ///< a caller-supplied value is malformed (key, duration, session id, ...)
    invalid_config,         ///< client_options or an environment variable is malformed
    conflict,               ///< the key holds something else (other Flags): not a lock of this kind
    too_many_operations,    ///< a txn with more operations than Consul accepts (64)
    client_closed,          ///< the client was cancelled or destroyed while the operation was pending
    unsupported,            ///< a feature the library or the server does not support here
    operation_in_progress,  ///< an operation that allows one at a time per object is already pending
    already_held,           ///< acquire on a lock this object already holds (and it is not reentrant)
    limit_conflict,         ///< a semaphore's record names another limit than ours
    internal_error,         ///< colock broke its own rules (an exception it did not expect); please report it
    session_mismatch,       ///< the given session was made for another datacenter, namespace, partition or token
                            ///< than the recipe's requests name (its keys would be written elsewhere)
};

/// Groups of error codes, for `ec == colock::condition::retryable` style tests.
enum class condition {
    retryable = 1,          ///< transient: trying again later may succeed (5xx, 429, transport errors, timeouts)
    timeout,                ///< a deadline passed
    ownership_lost,         ///< the caller no longer owns what it held (lock_lost, session_*)
};

const boost::system::error_category& colock_category() noexcept;
/// Category "colock.http": the value is the HTTP status Consul answered with (e.g. 500, 403).
const boost::system::error_category& http_category() noexcept;
const boost::system::error_category& condition_category() noexcept;

inline error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), colock_category()}; }
inline boost::system::error_condition make_error_condition(condition c) noexcept
{
    return {static_cast<int>(c), condition_category()};
}
/// The error code for an HTTP status from Consul (category "colock.http").
inline error_code make_http_error(unsigned status) noexcept { return {static_cast<int>(status), http_category()}; }

/// True when retrying the operation later may succeed: HTTP 5xx and 429, transport errors, timeouts.
/// Not retryable: 4xx other than 429, protocol violations, cancellation, ownership loss.
bool is_retryable(const error_code& ec) noexcept;

} // namespace colock

namespace boost::system {
template <> struct is_error_code_enum<colock::errc> : std::true_type {};
template <> struct is_error_condition_enum<colock::condition> : std::true_type {};
} // namespace boost::system

#endif
