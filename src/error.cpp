#include <colock/error.hpp>

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

#include <string>

namespace colock {
namespace {

class colock_category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "colock"; }
    std::string message(int ev) const override
    {
        switch (static_cast<errc>(ev)) {
        case errc::not_held: return "not held";
        case errc::session_invalidated: return "the Consul session was invalidated";
        case errc::session_expired: return "the Consul session may have expired (no successful renewal within its TTL)";
        case errc::lock_lost: return "the lock was lost";
        case errc::bad_response: return "Consul's response could not be decoded";
        case errc::request_timeout: return "the request passed its deadline";
        case errc::indeterminate_write: return "the write may or may not have been applied (no reply)";
        case errc::invalid_argument: return "invalid argument";
        case errc::invalid_config: return "invalid configuration";
        case errc::conflict: return "the key is in use by something else (other flags)";
        case errc::too_many_operations: return "too many operations in one transaction (at most 64)";
        case errc::client_closed: return "the client was closed";
        case errc::unsupported: return "not supported";
        case errc::operation_in_progress: return "another such operation is already pending on this object";
        case errc::already_held: return "already held by this object";
        case errc::limit_conflict: return "semaphore limit conflict (the record names another limit)";
        case errc::internal_error: return "internal error in colock (an unexpected exception; please report it)";
        case errc::session_mismatch:
            return "the session was made with another datacenter, namespace, partition or token than the requests use";
        }
        return "unknown colock error";
    }
    boost::system::error_condition default_error_condition(int ev) const noexcept override
    {
        switch (static_cast<errc>(ev)) {
        case errc::session_invalidated:
        case errc::session_expired:
        case errc::lock_lost: return make_error_condition(condition::ownership_lost);
        case errc::request_timeout: return make_error_condition(condition::timeout);
        default: return {ev, *this};
        }
    }
};

class http_category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "colock.http"; }
    std::string message(int ev) const override
    {
        const char* text = nullptr;
        switch (ev) {
        case 400: text = "Bad Request"; break;
        case 403: text = "Forbidden (ACL)"; break;
        case 404: text = "Not Found"; break;
        case 405: text = "Method Not Allowed"; break;
        case 409: text = "Conflict"; break;
        case 413: text = "Payload Too Large"; break;
        case 429: text = "Too Many Requests"; break;
        case 500: text = "Internal Server Error"; break;
        case 502: text = "Bad Gateway"; break;
        case 503: text = "Service Unavailable"; break;
        case 504: text = "Gateway Timeout"; break;
        default: break;
        }
        std::string out = "HTTP " + std::to_string(ev);
        if (text)
            out += std::string(" ") + text;
        return out;
    }
};

class condition_category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "colock.condition"; }
    std::string message(int ev) const override
    {
        switch (static_cast<condition>(ev)) {
        case condition::retryable: return "a transient failure; retrying may succeed";
        case condition::timeout: return "a deadline passed";
        case condition::ownership_lost: return "ownership was lost";
        }
        return "unknown colock condition";
    }
    bool equivalent(const error_code& ec, int cond) const noexcept override
    {
        switch (static_cast<condition>(cond)) {
        case condition::retryable: return is_retryable(ec);
        case condition::timeout:
            return ec == errc::request_timeout || ec == boost::beast::error::timeout ||
                   ec == boost::asio::error::timed_out;
        case condition::ownership_lost:
            return ec == errc::session_invalidated || ec == errc::session_expired || ec == errc::lock_lost;
        }
        return false;
    }
};

} // namespace

const boost::system::error_category& colock_category() noexcept
{
    static const colock_category_impl instance;
    return instance;
}

const boost::system::error_category& http_category() noexcept
{
    static const http_category_impl instance;
    return instance;
}

const boost::system::error_category& condition_category() noexcept
{
    static const condition_category_impl instance;
    return instance;
}

bool is_retryable(const error_code& ec) noexcept
{
    if (!ec)
        return false;
    if (ec.category() == http_category())
        return ec.value() == 429 || ec.value() >= 500;
    if (ec.category() == colock_category())
        return ec == errc::request_timeout;
    if (ec == boost::asio::error::operation_aborted)
        return false;
    if (ec == boost::beast::error::timeout)
        return true;
    // EOF as Beast's HTTP parser reports it: before any byte of the reply (a keep-alive connection the server
    // closed as the request arrived) or inside the body (connection lost mid-reply). Other parse errors are
    // protocol violations and stay fatal.
    if (ec == boost::beast::http::error::end_of_stream || ec == boost::beast::http::error::partial_message)
        return true;
    // Transport failures: refused, reset, EOF, unreachable, name resolution.
    return ec.category() == boost::asio::error::get_system_category() ||
           ec.category() == boost::asio::error::get_misc_category() ||
           ec.category() == boost::asio::error::get_netdb_category() ||
           ec.category() == boost::asio::error::get_addrinfo_category();
}

} // namespace colock
