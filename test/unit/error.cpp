// Tier A: include/colock/error.hpp, the error categories, conditions and is_retryable() (STYLE.md 4.3).
#include <colock/error.hpp>

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/system/errc.hpp>
#include <boost/test/unit_test.hpp>

#include <set>
#include <string>

namespace {

using colock::condition;
using colock::errc;
using colock::error_code;
using colock::make_http_error;

// Every errc value, listed by name: a new enumerator must be added here (coverage is never a count).
const errc all_errc[] = {
    errc::not_held,          errc::session_invalidated, errc::session_expired, errc::lock_lost,
    errc::bad_response,      errc::request_timeout,     errc::indeterminate_write, errc::invalid_argument,
    errc::invalid_config,    errc::conflict,            errc::too_many_operations, errc::client_closed,
    errc::unsupported,       errc::operation_in_progress, errc::already_held, errc::limit_conflict,
    errc::internal_error,    errc::session_mismatch,
};

const char* const unknown = "unknown colock error";

} // namespace

BOOST_AUTO_TEST_SUITE(test_error)

BOOST_AUTO_TEST_CASE(every_errc_value_has_its_own_message)
{
    std::set<std::string> seen;
    for (const errc e : all_errc) {
        const error_code ec = make_error_code(e);
        BOOST_TEST_CONTEXT("errc value " << static_cast<int>(e))
        {
            BOOST_TEST(ec.value() >= 1);
            BOOST_TEST(ec.message() != unknown);
            BOOST_TEST(!ec.message().empty());
            BOOST_TEST(seen.insert(ec.message()).second, "duplicate message " << ec.message());
            BOOST_TEST(&ec.category() == &colock::colock_category());
            BOOST_TEST(static_cast<bool>(ec)); // values start at 1: never "success"
        }
    }
}

BOOST_AUTO_TEST_CASE(errc_converts_implicitly_to_error_code)
{
    const error_code ec = errc::lock_lost;
    BOOST_TEST((ec == errc::lock_lost));
    BOOST_TEST((ec != errc::not_held));
}

BOOST_AUTO_TEST_CASE(out_of_range_values_give_unknown_colock_error)
{
    const int past_the_end = static_cast<int>(std::size(all_errc)) + 1; // values run 1..N
    for (const int v : {0, -1, past_the_end, 99, 1000}) {
        BOOST_TEST(colock::colock_category().message(v) == unknown, "value " << v);
    }
}

BOOST_AUTO_TEST_CASE(category_names_are_colock_and_colock_http)
{
    BOOST_TEST(std::string(colock::colock_category().name()) == "colock");
    BOOST_TEST(std::string(colock::http_category().name()) == "colock.http");
    BOOST_TEST(std::string(make_error_code(errc::bad_response).category().name()) == "colock");
    BOOST_TEST(std::string(make_http_error(500).category().name()) == "colock.http");
}

BOOST_AUTO_TEST_CASE(http_error_messages_contain_the_status)
{
    for (const unsigned status : {400u, 403u, 404u, 409u, 413u, 429u, 500u, 503u, 418u, 599u}) {
        const error_code ec = make_http_error(status);
        BOOST_TEST(ec.value() == static_cast<int>(status));
        BOOST_TEST(ec.message().find(std::to_string(status)) != std::string::npos, "message " << ec.message());
    }
}

BOOST_AUTO_TEST_CASE(http_errors_are_not_colock_errors_with_the_same_value)
{
    BOOST_TEST((make_http_error(4) != errc::lock_lost));
    BOOST_TEST((make_http_error(500) != make_http_error(503)));
    BOOST_TEST((make_http_error(500) == make_http_error(500)));
}

BOOST_AUTO_TEST_CASE(is_retryable_is_true_for_transient_failures)
{
    const error_code retryable[] = {
        make_http_error(500),
        make_http_error(502),
        make_http_error(503),
        make_http_error(504),
        make_http_error(429),
        make_error_code(errc::request_timeout),
        boost::asio::error::connection_refused,
        boost::asio::error::connection_reset,
        boost::asio::error::eof,
        boost::asio::error::timed_out,
        boost::asio::error::host_not_found,
        boost::beast::error::timeout,
    };
    for (const error_code& ec : retryable) {
        BOOST_TEST_CONTEXT(ec.category().name() << ":" << ec.value() << " " << ec.message())
        {
            BOOST_TEST(colock::is_retryable(ec));
            BOOST_TEST((ec == condition::retryable));
        }
    }
}

BOOST_AUTO_TEST_CASE(is_retryable_is_false_for_fatal_failures)
{
    const error_code fatal[] = {
        error_code{},
        make_http_error(400),
        make_http_error(403),
        make_http_error(404),
        make_http_error(405),
        make_http_error(409),
        make_http_error(413),
        boost::asio::error::operation_aborted,
        make_error_code(errc::bad_response),
        make_error_code(errc::invalid_argument),
        make_error_code(errc::invalid_config),
        make_error_code(errc::lock_lost),
        make_error_code(errc::session_invalidated),
        make_error_code(errc::session_expired),
        make_error_code(errc::not_held),
        make_error_code(errc::indeterminate_write),
        make_error_code(errc::client_closed),
    };
    for (const error_code& ec : fatal) {
        BOOST_TEST_CONTEXT(ec.category().name() << ":" << ec.value() << " " << ec.message())
        {
            BOOST_TEST(!colock::is_retryable(ec));
            BOOST_TEST((ec != condition::retryable));
        }
    }
}

BOOST_AUTO_TEST_CASE(retryable_condition_agrees_with_is_retryable_for_every_errc)
{
    for (const errc e : all_errc) {
        const error_code ec = make_error_code(e);
        BOOST_TEST((ec == condition::retryable) == colock::is_retryable(ec), "errc value " << static_cast<int>(e));
    }
    for (unsigned status = 100; status < 600; ++status) {
        const error_code ec = make_http_error(status);
        BOOST_TEST_REQUIRE((ec == condition::retryable) == colock::is_retryable(ec), "status " << status);
    }
}

BOOST_AUTO_TEST_CASE(ownership_lost_matches_lock_lost_and_both_session_losses)
{
    BOOST_TEST((make_error_code(errc::lock_lost) == condition::ownership_lost));
    BOOST_TEST((make_error_code(errc::session_invalidated) == condition::ownership_lost));
    BOOST_TEST((make_error_code(errc::session_expired) == condition::ownership_lost));
    for (const errc e : all_errc) {
        if (e == errc::lock_lost || e == errc::session_invalidated || e == errc::session_expired)
            continue;
        BOOST_TEST((make_error_code(e) != condition::ownership_lost), "errc value " << static_cast<int>(e));
    }
    BOOST_TEST((make_http_error(404) != condition::ownership_lost));
    BOOST_TEST((make_error_code(errc::lock_lost).default_error_condition() == condition::ownership_lost));
}

BOOST_AUTO_TEST_CASE(timeout_matches_request_timeout_and_transport_timeouts)
{
    BOOST_TEST((make_error_code(errc::request_timeout) == condition::timeout));
    BOOST_TEST((error_code(boost::asio::error::timed_out) == condition::timeout));
    BOOST_TEST((error_code(boost::beast::error::timeout) == condition::timeout));
    for (const errc e : all_errc) {
        if (e == errc::request_timeout)
            continue;
        BOOST_TEST((make_error_code(e) != condition::timeout), "errc value " << static_cast<int>(e));
    }
    BOOST_TEST((error_code(boost::asio::error::operation_aborted) != condition::timeout));
}

BOOST_AUTO_TEST_CASE(condition_messages_are_known)
{
    for (const condition c : {condition::retryable, condition::timeout, condition::ownership_lost}) {
        const auto cond = make_error_condition(c);
        BOOST_TEST(cond.message() != "unknown colock condition");
        BOOST_TEST(!cond.message().empty());
    }
}

BOOST_AUTO_TEST_SUITE_END()
