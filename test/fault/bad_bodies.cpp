// Bodies Consul never sends (or sends only in edge cases), through the real client and HTTP stack against the
// scripted fake agent (TESTING.md, "HTTP/JSON bad input", bodies): each must give errc::bad_response (or the
// documented result), never a crash, never a partial result, and never a retry into a different answer. Where the
// fake agent's next reply is a *good* one, a retry would turn the case into a success, so the tests also prove that
// decode failures are not retried.

#include <colock/consul/client.hpp>

#include "async_test.hpp"
#include "fake_agent.hpp"
#include "fault_helpers.hpp"
#include "test_options.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace asio = boost::asio;
using namespace colock;
using namespace colock::consul;
using namespace colock::test;
using namespace std::chrono_literals;

namespace {

const std::string sid = "adf4238a-882b-9ddc-4a9d-5b6758e4159e";

// A KV entry with the given raw JSON for Flags / Value / Session (empty: omitted) and Key.
std::string entry(const std::string& key = "k", const std::string& flags = "0", const std::string& value = R"("dmFsdWU=")",
                  const std::string& session = "")
{
    std::string s = R"({"LockIndex":1,"Key":")" + key + R"(","Flags":)" + flags + R"(,"Value":)" + value;
    if (!session.empty())
        s += R"(,"Session":)" + session;
    return s + R"(,"CreateIndex":3,"ModifyIndex":5})";
}

std::string list(const std::string& items) { return "[" + items + "]"; }

// Runs `op` (see run_op) against a fake agent whose first reply is `reply` and every further one `then` (when given:
// a good reply, so that a retry would show up as a success); returns what `op` completed with and the requests.
template <class Op>
auto answered_with(std::string reply, Op op, std::optional<std::string> then = std::nullopt)
{
    fake_agent fake;
    fake.push(fake_step::respond(std::move(reply)));
    if (then)
        fake.set_default(fake_step::respond(std::move(*then)));
    auto r = run_op(fake_agent_options(fake.port()), op);
    return std::pair{std::move(r), fake.requests()};
}

struct get_outcome {
    error_code ec;
    kv_get_result result;
    diagnostics diag;
    std::size_t requests = 0;
};

// kv_get(key) answered with `reply`; any further request would get a valid entry (so a retry shows up).
get_outcome get_with_reply(std::string reply, const std::string& key = "k")
{
    get_outcome out;
    query_options q;
    q.diag = &out.diag;
    auto [r, reqs] = answered_with(
        std::move(reply), [&](client& c) { return c.kv_get(key, q, tuple_awaitable); },
        fake_agent::consul_reply(list(entry(key)), 99));
    out.ec = r.ec;
    out.result = std::move(r.value);
    out.requests = reqs.size();
    return out;
}

void expect_bad_body(const std::string& body, const std::string& key = "k")
{
    BOOST_TEST_CONTEXT("body: " << body.substr(0, 200))
    {
        const auto o = get_with_reply(fake_agent::consul_reply(body, 5), key);
        BOOST_TEST(o.ec == errc::bad_response, o.ec.message());
        BOOST_TEST(!o.result.entry.has_value());  // no partial result
        BOOST_TEST(o.result.meta.index == 0u);
        BOOST_TEST(o.requests == 1u);             // not retried
        BOOST_TEST(o.diag.http_status == 200u);
        BOOST_TEST(!o.diag.client_message.empty());
    }
}

kv_entry expect_good_body(const std::string& body)
{
    const auto o = get_with_reply(fake_agent::consul_reply(body, 5));
    BOOST_TEST_REQUIRE(!o.ec, o.ec.message());
    BOOST_TEST_REQUIRE(o.result.entry.has_value());
    BOOST_TEST(o.result.meta.index == 5u);
    BOOST_TEST(o.requests == 1u);
    return *o.result.entry;
}

} // namespace

BOOST_AUTO_TEST_SUITE(kv_get_bodies)

BOOST_AUTO_TEST_CASE(malformed_json) { expect_bad_body(R"([{"Key":"k",,"Flags":0}])"); }
BOOST_AUTO_TEST_CASE(truncated_json)
{
    const auto good = list(entry());
    expect_bad_body(good.substr(0, good.size() - 12));
}
BOOST_AUTO_TEST_CASE(trailing_bytes_after_json) { expect_bad_body(list(entry()) + " x"); }
BOOST_AUTO_TEST_CASE(object_instead_of_array) { expect_bad_body("{}"); }
BOOST_AUTO_TEST_CASE(entry_object_without_array) { expect_bad_body(entry()); }
BOOST_AUTO_TEST_CASE(json_null) { expect_bad_body("null"); }
BOOST_AUTO_TEST_CASE(empty_array_with_200) { expect_bad_body("[]"); }
BOOST_AUTO_TEST_CASE(empty_body) { expect_bad_body(""); }
BOOST_AUTO_TEST_CASE(whitespace_body) { expect_bad_body(" \r\n"); }
BOOST_AUTO_TEST_CASE(array_of_non_objects) { expect_bad_body("[1]"); }
BOOST_AUTO_TEST_CASE(two_entries_for_one_key) { expect_bad_body(list(entry() + "," + entry())); }
BOOST_AUTO_TEST_CASE(session_as_number) { expect_bad_body(list(entry("k", "0", R"("dmFsdWU=")", "12345"))); }
BOOST_AUTO_TEST_CASE(session_as_object) { expect_bad_body(list(entry("k", "0", R"("dmFsdWU=")", R"({"ID":"x"})"))); }
BOOST_AUTO_TEST_CASE(flags_as_string) { expect_bad_body(list(entry("k", R"("7")"))); }
BOOST_AUTO_TEST_CASE(flags_negative) { expect_bad_body(list(entry("k", "-1"))); }
BOOST_AUTO_TEST_CASE(flags_float) { expect_bad_body(list(entry("k", "1.5"))); }
BOOST_AUTO_TEST_CASE(flags_integral_float) { expect_bad_body(list(entry("k", "7.0"))); }
BOOST_AUTO_TEST_CASE(flags_1e400) { expect_bad_body(list(entry("k", "1e400"))); }
BOOST_AUTO_TEST_CASE(flags_above_2_pow_64) { expect_bad_body(list(entry("k", "18446744073709551616"))); }
BOOST_AUTO_TEST_CASE(flags_null) { expect_bad_body(list(entry("k", "null"))); }
BOOST_AUTO_TEST_CASE(modify_index_as_string)
{
    expect_bad_body(R"([{"LockIndex":1,"Key":"k","Flags":0,"Value":null,"CreateIndex":3,"ModifyIndex":"5"}])");
}
BOOST_AUTO_TEST_CASE(modify_index_missing)
{
    expect_bad_body(R"([{"LockIndex":1,"Key":"k","Flags":0,"Value":null,"CreateIndex":3}])");
}
BOOST_AUTO_TEST_CASE(value_not_base64) { expect_bad_body(list(entry("k", "0", R"("not base64!")"))); }
BOOST_AUTO_TEST_CASE(value_bad_padding) { expect_bad_body(list(entry("k", "0", R"("dmFsdWU")"))); }
BOOST_AUTO_TEST_CASE(value_as_number) { expect_bad_body(list(entry("k", "0", "42"))); }
BOOST_AUTO_TEST_CASE(key_is_not_the_requested_key) { expect_bad_body(list(entry("other"))); }
BOOST_AUTO_TEST_CASE(key_is_a_prefix_of_the_requested_key) { expect_bad_body(list(entry("a/b")), "a/bc"); }
BOOST_AUTO_TEST_CASE(key_missing)
{
    expect_bad_body(R"([{"LockIndex":1,"Flags":0,"Value":null,"CreateIndex":3,"ModifyIndex":5}])");
}
BOOST_AUTO_TEST_CASE(invalid_utf8_in_a_string) { expect_bad_body("[{\"LockIndex\":1,\"Key\":\"k\xff\xfe\",\"Flags\":0}]"); }
BOOST_AUTO_TEST_CASE(deep_nesting)
{
    expect_bad_body(std::string(100000, '[') + std::string(100000, ']'));
}

BOOST_AUTO_TEST_CASE(value_null_is_an_empty_value_and_no_session)
{
    const auto e = expect_good_body(list(entry("k", "0", "null")));
    BOOST_TEST(e.key == "k");
    BOOST_TEST(e.value.empty());
    BOOST_TEST(!e.session.has_value());
    BOOST_TEST(e.lock_index == 1u);
    BOOST_TEST(e.modify_index == 5u);
}

BOOST_AUTO_TEST_CASE(flags_above_int64_max_are_decoded_exactly)
{
    const auto e = expect_good_body(list(entry("k", "16210313421097356768", R"("dmFsdWU=")",
                                                R"("adf4238a-882b-9ddc-4a9d-5b6758e4159e")")));
    BOOST_TEST(e.flags == 16210313421097356768ull);
    BOOST_TEST(e.value == "value");
    BOOST_TEST_REQUIRE(e.session.has_value());
    BOOST_TEST(e.session->str() == "adf4238a-882b-9ddc-4a9d-5b6758e4159e");
}

BOOST_AUTO_TEST_CASE(flags_of_2_pow_64_minus_1_are_decoded_exactly)
{
    const auto e = expect_good_body(list(entry("k", "18446744073709551615")));
    BOOST_TEST(e.flags == 18446744073709551615ull);
}

BOOST_AUTO_TEST_CASE(a_404_with_a_body_is_no_entry_with_the_index)
{
    const auto o = get_with_reply(fake_agent::reply(404, "key not found, but here is some text",
                                                    {{"X-Consul-Index", "77"}, {"X-Consul-KnownLeader", "true"}}));
    BOOST_TEST(!o.ec, o.ec.message());
    BOOST_TEST(!o.result.entry.has_value());
    BOOST_TEST(o.result.meta.index == 77u);
    BOOST_TEST(o.result.meta.known_leader);
    BOOST_TEST(o.requests == 1u);
}

BOOST_AUTO_TEST_CASE(a_404_with_a_json_body_is_still_no_entry)
{
    // Whatever the body says, a 404 means "no such key": its contents must not be used.
    const auto o = get_with_reply(fake_agent::reply(404, list(entry()), {{"X-Consul-Index", "78"}}));
    BOOST_TEST(!o.ec, o.ec.message());
    BOOST_TEST(!o.result.entry.has_value());
    BOOST_TEST(o.result.meta.index == 78u);
}

BOOST_AUTO_TEST_CASE(a_404_without_the_index_header_is_bad_response)
{
    const auto o = get_with_reply(fake_agent::reply(404, ""));
    BOOST_TEST(o.ec == errc::bad_response, o.ec.message());
    BOOST_TEST(!o.result.entry.has_value());
    BOOST_TEST(o.requests == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(other_bodies)

struct put_outcome {
    error_code ec;
    bool verdict = false;
    std::size_t requests = 0;
};

put_outcome acquire_with_reply(std::string reply)
{
    auto [r, reqs] = answered_with(
        std::move(reply),
        [](client& c) {
            return c.kv_put("lock/a", "holder", kv_put_options::with_acquire(session_id(sid), 3), write_options{},
                            tuple_awaitable);
        },
        fake_agent::reply(200, "true"));
    BOOST_TEST_REQUIRE(!reqs.empty());
    BOOST_TEST(reqs[0].target == "/v1/kv/lock/a?flags=3&acquire=" + sid);
    return {r.ec, r.value, reqs.size()};
}

BOOST_AUTO_TEST_CASE(acquire_body_not_exactly_true_or_false_is_bad_response)
{
    for (std::string body : {"yes", "\"true\"", "truex", "1", "", "true false", "{\"ok\":true}", "TRUE"}) {
        BOOST_TEST_CONTEXT("body: '" << body << "'")
        {
            const auto o = acquire_with_reply(fake_agent::reply(200, body));
            BOOST_TEST(o.ec == errc::bad_response, o.ec.message());
            BOOST_TEST(!o.verdict);
            BOOST_TEST(o.requests == 1u); // a write is never re-sent
        }
    }
}

BOOST_AUTO_TEST_CASE(acquire_body_true_or_false_with_whitespace_is_the_verdict)
{
    auto t = acquire_with_reply(fake_agent::reply(200, "true\n"));
    BOOST_TEST(!t.ec, t.ec.message());
    BOOST_TEST(t.verdict);
    auto f = acquire_with_reply(fake_agent::reply(200, "  false\r\n"));
    BOOST_TEST(!f.ec, f.ec.message());
    BOOST_TEST(!f.verdict);
    BOOST_TEST(f.requests == 1u);
}

BOOST_AUTO_TEST_CASE(kv_list_entry_outside_the_prefix_is_bad_response)
{
    const auto [r, reqs] = answered_with(fake_agent::consul_reply(list(entry("p/a") + "," + entry("q/b")), 5),
                                         [](client& c) { return c.kv_list("p/", query_options{}, tuple_awaitable); });
    BOOST_TEST(r.ec == errc::bad_response, r.ec.message());
    BOOST_TEST(r.value.entries.empty());
    BOOST_TEST(reqs.size() == 1u);
}

BOOST_AUTO_TEST_CASE(session_create_bodies_without_a_valid_id_are_bad_response)
{
    for (std::string body : {R"({"ID":42})", "{}", R"({"ID":""})", "[]", R"({"ID":"has space"})", "true"}) {
        BOOST_TEST_CONTEXT("body: " << body)
        {
            const auto [r, reqs] = answered_with(
                fake_agent::reply(200, body),
                [](client& c) { return c.session_create(session_options{}, write_options{}, tuple_awaitable); },
                fake_agent::reply(200, R"({"ID":")" + sid + R"("})"));
            BOOST_TEST(r.ec == errc::bad_response, r.ec.message());
            BOOST_TEST(r.value.empty());
            BOOST_TEST(reqs.size() == 1u);
        }
    }
}

// session_renew(sid) answered with `body`.
auto renew_answered_with(const std::string& body)
{
    return answered_with(fake_agent::consul_reply(body, 10), [](client& c) {
        return c.session_renew(session_id(sid), write_options{}, tuple_awaitable);
    });
}

BOOST_AUTO_TEST_CASE(session_renew_ignores_unexpected_values_in_fields_it_does_not_need)
{
    // A renewal needs the ID and the TTL only; a strange Behavior or LockDelay must not make every
    // renewal fail (which would declare every session lost).
    const auto [r, reqs] = renew_answered_with(
        R"([{"ID":")" + sid +
        R"(","Name":"x","Node":"n","LockDelay":1.5,"Behavior":"explode","TTL":"2s","CreateIndex":10,"ModifyIndex":10}])");
    BOOST_TEST(!r.ec, r.ec.message());
    BOOST_TEST(r.value.id.str() == sid);
    BOOST_TEST(r.value.ttl.count() == 2000);
}

BOOST_AUTO_TEST_CASE(session_renew_answered_for_another_session_or_with_a_bad_ttl_is_bad_response)
{
    const std::string other =
        R"([{"ID":"00000000-0000-0000-0000-000000000000","Name":"x","Node":"n","LockDelay":15000000000,"Behavior":"release","TTL":"2s","CreateIndex":10,"ModifyIndex":10}])";
    const std::string bad_ttl =
        R"([{"ID":"adf4238a-882b-9ddc-4a9d-5b6758e4159e","Name":"x","Node":"n","LockDelay":15000000000,"Behavior":"release","TTL":"soon","CreateIndex":10,"ModifyIndex":10}])";
    for (const auto& body : {other, bad_ttl}) {
        BOOST_TEST_CONTEXT("body: " << body)
        {
            const auto [r, reqs] = renew_answered_with(body);
            BOOST_TEST(r.ec == errc::bad_response, r.ec.message());
            BOOST_TEST(r.value.id.empty());
            BOOST_TEST(reqs.size() == 1u);
        }
    }
}

BOOST_AUTO_TEST_CASE(txn_200_with_errors_or_409_without_errors_is_bad_response)
{
    const std::string committed_with_errors = R"({"Results":null,"Errors":[{"OpIndex":0,"What":"boom"}]})";
    const std::string rolled_back_without_errors = R"({"Results":null,"Errors":null})";
    const std::vector<std::pair<unsigned, std::string>> cases = {{200, committed_with_errors},
                                                                 {409, rolled_back_without_errors},
                                                                 {200, R"({"Results":[{"KV":{"Key":"k","Flags":"x"}}]})"},
                                                                 {200, "[]"}};
    for (const auto& [status, body] : cases) {
        BOOST_TEST_CONTEXT("status " << status << " body: " << body)
        {
            const auto [r, reqs] = answered_with(
                fake_agent::reply(status, body, {{"Content-Type", "application/json"}}),
                [](client& c) { return c.txn({txn_op::set("k", "v")}, write_options{}, tuple_awaitable); });
            BOOST_TEST(r.ec == errc::bad_response, r.ec.message());
            BOOST_TEST(r.value.results.empty());
            BOOST_TEST(r.value.errors.empty());
            BOOST_TEST(reqs.size() == 1u);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
