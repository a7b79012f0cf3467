// Tier A: src/consul/codec.hpp, Consul's JSON bodies. Every decoder must survive hostile input (TESTING.md "HTTP/JSON
// bad input"): a typed error (errc::bad_response), no crash, and no partial result left in the output.
#include "consul/codec.hpp"
#include "detail/encoding.hpp"

#include <colock/consul/kv.hpp>
#include <colock/consul/session_id.hpp>
#include <colock/consul/session_options.hpp>
#include <colock/consul/txn.hpp>
#include <colock/error.hpp>

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace json = boost::json;
using colock::errc;
using colock::error_code;
using colock::consul::kv_entry;
using colock::consul::session_behavior;
using colock::consul::session_entry;
using colock::consul::session_id;
using colock::consul::session_options;
using colock::consul::txn_op;
using colock::consul::txn_result;
using colock::consul::txn_verb;
using namespace colock::consul::detail;
using namespace std::chrono_literals;
using namespace std::string_literals;

const std::string sid = "adf4238a-882b-9ddc-4a9d-5b6758e4159e";

// One KV entry as Consul writes it; each field is raw JSON text, std::nullopt omits the field.
struct kv_fields {
    std::optional<std::string> lock_index = "1";
    std::optional<std::string> key = R"("k")";
    std::optional<std::string> flags = "0";
    std::optional<std::string> value = R"("dmFs")"; // "val"
    std::optional<std::string> session;
    std::optional<std::string> create_index = "10";
    std::optional<std::string> modify_index = "12";
};

std::string object_of(const kv_fields& f)
{
    std::string out = "{";
    auto add = [&](const char* name, const std::optional<std::string>& v) {
        if (!v)
            return;
        if (out.size() > 1)
            out += ',';
        out += '"';
        out += name;
        out += "\":";
        out += *v;
    };
    add("LockIndex", f.lock_index);
    add("Key", f.key);
    add("Flags", f.flags);
    add("Value", f.value);
    add("Session", f.session);
    add("CreateIndex", f.create_index);
    add("ModifyIndex", f.modify_index);
    return out + "}";
}

std::string array_of(const kv_fields& f) { return "[" + object_of(f) + "]"; }

kv_entry sentinel_entry()
{
    kv_entry e;
    e.key = "left-over";
    e.modify_index = 99;
    return e;
}

// Decodes a KV list into an output that already holds something, to catch partial or stale results.
struct kv_decode {
    error_code ec;
    std::vector<kv_entry> out;
};

kv_decode decode_kv(std::string_view body)
{
    kv_decode r;
    r.out = {sentinel_entry(), sentinel_entry()};
    r.ec = decode_kv_entries(body, r.out);
    return r;
}

bool rejected(const kv_decode& r) { return r.ec == errc::bad_response && r.out.empty(); }

// Either a clean success with `n` entries or a clean bad_response with nothing in the output.
bool definite(const kv_decode& r, std::size_t n)
{
    if (!r.ec)
        return r.out.size() == n;
    return rejected(r);
}

std::optional<std::uint64_t> flags_of(const std::string& flags_json)
{
    const auto r = decode_kv(array_of({.flags = flags_json}));
    if (r.ec || r.out.size() != 1)
        return std::nullopt;
    return r.out[0].flags;
}

std::string nested(std::size_t depth)
{
    return std::string(depth, '[') + std::string(depth, ']');
}

} // namespace

BOOST_AUTO_TEST_SUITE(test_codec)

// ---------------------------------------------------------------------------------------------------------------------
// KV entries

BOOST_AUTO_TEST_CASE(decode_kv_reads_a_locked_entry)
{
    const auto r = decode_kv(array_of({.lock_index = "3", .flags = "7", .session = '"' + sid + '"',
                                       .create_index = "10", .modify_index = "25"}));
    BOOST_REQUIRE(!r.ec);
    BOOST_REQUIRE(r.out.size() == 1u);
    const kv_entry& e = r.out[0];
    BOOST_TEST(e.key == "k");
    BOOST_TEST(e.value == "val");
    BOOST_TEST(e.flags == 7u);
    BOOST_TEST(e.lock_index == 3u);
    BOOST_TEST(e.create_index == 10u);
    BOOST_TEST(e.modify_index == 25u);
    BOOST_REQUIRE(e.session.has_value());
    BOOST_TEST(e.session->str() == sid);
}

BOOST_AUTO_TEST_CASE(decode_kv_treats_an_omitted_session_as_unlocked)
{
    const auto r = decode_kv(array_of({}));
    BOOST_REQUIRE(!r.ec);
    BOOST_REQUIRE(r.out.size() == 1u);
    BOOST_TEST(!r.out[0].session.has_value());
}

BOOST_AUTO_TEST_CASE(decode_kv_treats_an_empty_or_null_session_as_unlocked)
{
    for (const char* s : {R"("")", "null"}) {
        BOOST_TEST_CONTEXT("Session " << s)
        {
            const auto r = decode_kv(array_of({.session = s}));
            BOOST_REQUIRE(!r.ec);
            BOOST_REQUIRE(r.out.size() == 1u);
            BOOST_TEST(!r.out[0].session.has_value());
        }
    }
}

BOOST_AUTO_TEST_CASE(decode_kv_reads_null_or_absent_value_as_empty)
{
    const auto null_value = decode_kv(array_of({.value = "null"}));
    BOOST_REQUIRE(!null_value.ec);
    BOOST_REQUIRE(null_value.out.size() == 1u);
    BOOST_TEST(null_value.out[0].value.empty());

    const auto absent = decode_kv(array_of({.value = std::nullopt}));
    BOOST_REQUIRE(!absent.ec);
    BOOST_REQUIRE(absent.out.size() == 1u);
    BOOST_TEST(absent.out[0].value.empty());
}

BOOST_AUTO_TEST_CASE(decode_kv_decodes_binary_base64_values)
{
    const std::string bytes = "\0\x01\xff\xfe binary\n"s;
    const auto r = decode_kv(array_of({.value = '"' + colock::detail::base64_encode(bytes) + '"'}));
    BOOST_REQUIRE(!r.ec);
    BOOST_REQUIRE(r.out.size() == 1u);
    BOOST_TEST(r.out[0].value == bytes);
}

BOOST_AUTO_TEST_CASE(decode_kv_rejects_invalid_base64_values)
{
    for (const char* v : {R"("dmFs!")", R"("dmF")", R"("dm=s")", R"("dmFs\n")", R"("dmFs ")", R"("_-__")"}) {
        BOOST_TEST_CONTEXT("Value " << v) { BOOST_TEST(rejected(decode_kv(array_of({.value = v})))); }
    }
}

BOOST_AUTO_TEST_CASE(decode_kv_reads_flags_above_int64_max_exactly)
{
    BOOST_TEST((flags_of("16210313421097356768") == 16210313421097356768ull)); // the semaphore flag
    BOOST_TEST((flags_of("3304740253564472344") == 3304740253564472344ull));   // the lock flag
    BOOST_TEST((flags_of("18446744073709551615") == std::numeric_limits<std::uint64_t>::max()));
    BOOST_TEST((flags_of("9223372036854775808") == 9223372036854775808ull));
    BOOST_TEST((flags_of("0") == 0u));
}

BOOST_AUTO_TEST_CASE(decode_kv_rejects_flags_that_are_not_a_uint64)
{
    for (const char* f : {"-1", "-9223372036854775808", "1.0", "0.5", "1e2", "1e400", "-1e400", "18446744073709551616",
                          "99999999999999999999999", R"("0")", R"("16210313421097356768")", "true", "null", "[]",
                          "{}"}) {
        BOOST_TEST_CONTEXT("Flags " << f) { BOOST_TEST(rejected(decode_kv(array_of({.flags = f})))); }
    }
}

BOOST_AUTO_TEST_CASE(decode_kv_rejects_indexes_that_are_not_a_uint64)
{
    for (const char* bad : {"-1", "1.0", "1e400", "18446744073709551616", R"("12")", "null"}) {
        BOOST_TEST_CONTEXT("index " << bad)
        {
            BOOST_TEST(rejected(decode_kv(array_of({.lock_index = bad}))));
            BOOST_TEST(rejected(decode_kv(array_of({.create_index = bad}))));
            BOOST_TEST(rejected(decode_kv(array_of({.modify_index = bad}))));
        }
    }
}

BOOST_AUTO_TEST_CASE(decode_kv_reads_the_largest_index)
{
    const auto r = decode_kv(array_of({.modify_index = "18446744073709551615"}));
    BOOST_REQUIRE(!r.ec);
    BOOST_REQUIRE(r.out.size() == 1u);
    BOOST_TEST(r.out[0].modify_index == std::numeric_limits<std::uint64_t>::max());
}

BOOST_AUTO_TEST_CASE(decode_kv_rejects_missing_required_fields)
{
    BOOST_TEST(rejected(decode_kv(array_of({.key = std::nullopt}))));
    BOOST_TEST(rejected(decode_kv(array_of({.key = "null"}))));
    BOOST_TEST(rejected(decode_kv(array_of({.flags = std::nullopt}))));
    BOOST_TEST(rejected(decode_kv(array_of({.modify_index = std::nullopt}))));
}

BOOST_AUTO_TEST_CASE(decode_kv_rejects_wrong_types)
{
    BOOST_TEST(rejected(decode_kv(array_of({.key = "5"}))));
    BOOST_TEST(rejected(decode_kv(array_of({.key = R"(["k"])"}))));
    BOOST_TEST(rejected(decode_kv(array_of({.value = "5"}))));
    BOOST_TEST(rejected(decode_kv(array_of({.value = "{}"}))));
    BOOST_TEST(rejected(decode_kv(array_of({.session = "5"}))));
    BOOST_TEST(rejected(decode_kv(array_of({.session = "true"}))));
    BOOST_TEST(rejected(decode_kv(R"([5])")));
    BOOST_TEST(rejected(decode_kv(R"(["k"])")));
    BOOST_TEST(rejected(decode_kv(R"([null])")));
}

BOOST_AUTO_TEST_CASE(decode_kv_rejects_bodies_that_are_not_an_array)
{
    BOOST_TEST(rejected(decode_kv(object_of({}))));
    BOOST_TEST(rejected(decode_kv("{}")));
    BOOST_TEST(rejected(decode_kv("null")));
    BOOST_TEST(rejected(decode_kv("")));
    BOOST_TEST(rejected(decode_kv("   ")));
    BOOST_TEST(rejected(decode_kv("true")));
    BOOST_TEST(rejected(decode_kv(R"("[]")")));
}

BOOST_AUTO_TEST_CASE(decode_kv_reads_an_empty_array_as_no_entries)
{
    const auto r = decode_kv("[]");
    BOOST_TEST(!r.ec);
    BOOST_TEST(r.out.empty());
}

BOOST_AUTO_TEST_CASE(decode_kv_rejects_truncated_json_at_every_length)
{
    const std::string body = "[" + object_of({.session = '"' + sid + '"'}) + "," + object_of({}) + "]";
    BOOST_REQUIRE(!decode_kv(body).ec);
    for (std::size_t n = 0; n < body.size(); ++n) {
        BOOST_TEST_CONTEXT("prefix of " << n << " bytes") { BOOST_TEST(rejected(decode_kv(body.substr(0, n)))); }
    }
}

BOOST_AUTO_TEST_CASE(decode_kv_rejects_trailing_garbage)
{
    const std::string body = array_of({});
    BOOST_TEST(!decode_kv(body + "\n").ec); // trailing whitespace is fine
    BOOST_TEST(rejected(decode_kv(body + "x")));
    BOOST_TEST(rejected(decode_kv(body + "[]")));
    BOOST_TEST(rejected(decode_kv(body + body)));
    BOOST_TEST(rejected(decode_kv(body + ","s)));
    BOOST_TEST(rejected(decode_kv(body + "\0"s)));
}

BOOST_AUTO_TEST_CASE(decode_kv_leaves_no_partial_result_when_a_later_entry_is_bad)
{
    const std::string body = "[" + object_of({}) + "," + object_of({}) + "," + object_of({.flags = "-1"}) + "]";
    BOOST_TEST(rejected(decode_kv(body)));
}

BOOST_AUTO_TEST_CASE(decode_kv_rejects_100000_deep_nesting_without_crashing)
{
    BOOST_TEST(rejected(decode_kv(nested(100000))));
    BOOST_TEST(rejected(decode_kv("[" + std::string(100000, '{'))));
    // Deep nesting inside an otherwise valid entry, in a field colock does not read.
    kv_fields f;
    std::string body = object_of(f);
    body.pop_back();
    body += R"(,"Extra":)" + nested(100000) + "}";
    BOOST_TEST(rejected(decode_kv("[" + body + "]")));
}

BOOST_AUTO_TEST_CASE(decode_kv_handles_a_10_mb_value)
{
    const std::string bytes(7'864'320, '\xab'); // 7.5 MiB, 10 MiB of base64
    const std::string b64 = colock::detail::base64_encode(bytes);
    BOOST_REQUIRE(b64.size() == 10'485'760u);
    const auto r = decode_kv(array_of({.value = '"' + b64 + '"'}));
    BOOST_REQUIRE(definite(r, 1));
    BOOST_REQUIRE(!r.ec); // Boost.JSON has no string size limit below this: it decodes
    BOOST_TEST((r.out[0].value == bytes));
}

BOOST_AUTO_TEST_CASE(decode_kv_handles_a_10_mb_key)
{
    const auto r = decode_kv(array_of({.key = '"' + std::string(10u << 20, 'k') + '"'}));
    BOOST_REQUIRE(definite(r, 1));
    if (!r.ec)
        BOOST_TEST(r.out[0].key.size() == std::size_t(10u << 20));
}

BOOST_AUTO_TEST_CASE(decode_kv_gives_a_definite_result_for_invalid_utf8)
{
    for (const std::string& key : {"\"\xff\""s, "\"\xc3\""s, "\"\xed\xa0\x80\""s /* surrogate */, "\"\xc0\xaf\""s /* overlong */}) {
        const auto r = decode_kv(array_of({.key = key}));
        BOOST_TEST(definite(r, 1));
    }
    const auto r = decode_kv(array_of({.session = "\"\xfe\xfe\""}));
    BOOST_TEST(definite(r, 1));
}

BOOST_AUTO_TEST_CASE(decode_kv_gives_a_definite_result_for_nul_inside_strings)
{
    // A raw NUL is a control character, not allowed in a JSON string.
    BOOST_TEST(definite(decode_kv(array_of({.key = "\"a\0b\""s})), 1));
    BOOST_TEST(definite(decode_kv(array_of({.session = "\"a\0b\""s})), 1));
    // The escaped form is valid JSON and keeps the byte.
    const auto r = decode_kv(array_of({.key = R"("a\u0000b")"}));
    BOOST_REQUIRE(!r.ec);
    BOOST_REQUIRE(r.out.size() == 1u);
    BOOST_TEST(r.out[0].key == "a\0b"s);
}

BOOST_AUTO_TEST_CASE(decode_kv_gives_a_definite_result_for_duplicate_keys)
{
    const std::string body = R"([{"LockIndex":1,"Key":"a","Key":"b","Flags":0,"Flags":5,"Value":null,)"
                             R"("CreateIndex":10,"ModifyIndex":12,"ModifyIndex":13}])";
    const auto r = decode_kv(body);
    BOOST_REQUIRE(definite(r, 1));
    if (!r.ec) {
        BOOST_TEST((r.out[0].key == "a" || r.out[0].key == "b"));
        BOOST_TEST((r.out[0].flags == 0u || r.out[0].flags == 5u));
    }
    // A duplicate whose second copy has a bad type.
    BOOST_TEST(definite(decode_kv(R"([{"LockIndex":1,"Key":"a","Key":5,"Flags":0,"CreateIndex":1,"ModifyIndex":1}])"), 1));
}

BOOST_AUTO_TEST_CASE(decode_kv_ignores_unknown_fields)
{
    kv_fields f;
    std::string body = object_of(f);
    body.pop_back();
    body += R"(,"Namespace":"default","Partition":"default"})";
    const auto r = decode_kv("[" + body + "]");
    BOOST_REQUIRE(!r.ec);
    BOOST_TEST(r.out.size() == 1u);
}

BOOST_AUTO_TEST_CASE(decode_keys_reads_a_list_of_names_and_rejects_non_strings)
{
    std::vector<std::string> out{"stale"};
    BOOST_TEST(!decode_keys(R"(["a/","a/b"])", out));
    BOOST_TEST((out == std::vector<std::string>{"a/", "a/b"}));
    BOOST_TEST(!decode_keys("[]", out));
    BOOST_TEST(out.empty());
    out = {"stale"};
    BOOST_TEST((decode_keys(R"(["a",1])", out) == errc::bad_response));
    BOOST_TEST(out.empty());
    out = {"stale"};
    BOOST_TEST((decode_keys("null", out) == errc::bad_response));
    BOOST_TEST(out.empty());
}

// ---------------------------------------------------------------------------------------------------------------------
// Bare booleans

BOOST_AUTO_TEST_CASE(decode_bool_accepts_true_and_false_with_surrounding_whitespace)
{
    bool out = false;
    BOOST_TEST(!decode_bool("true", out));
    BOOST_TEST(out);
    BOOST_TEST(!decode_bool("false\n", out));
    BOOST_TEST(!out);
    BOOST_TEST(!decode_bool("  true  ", out));
    BOOST_TEST(out);
    BOOST_TEST(!decode_bool("\r\n\tfalse\r\n", out));
    BOOST_TEST(!out);
}

BOOST_AUTO_TEST_CASE(decode_bool_rejects_anything_else_and_leaves_the_output_alone)
{
    for (const std::string& body : {"True"s, "TRUE"s, "1"s, "0"s, ""s, "   "s, "truefalse"s, "true false"s,
                                   "\"true\""s, "[true]"s, "tru"s, "true\0"s, "null"s}) {
        BOOST_TEST_CONTEXT("body '" << colock::detail::printable(body) << "'")
        {
            bool out = true;
            BOOST_TEST((decode_bool(body, out) == errc::bad_response));
            BOOST_TEST(out);
            out = false;
            BOOST_TEST((decode_bool(body, out) == errc::bad_response));
            BOOST_TEST(!out);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// Sessions

BOOST_AUTO_TEST_CASE(decode_session_created_reads_the_id)
{
    session_id out;
    BOOST_TEST(!decode_session_created(R"({"ID":")" + sid + R"("})", out));
    BOOST_TEST(out.str() == sid);
}

BOOST_AUTO_TEST_CASE(decode_session_created_rejects_bad_bodies_without_touching_the_output)
{
    for (const char* body : {R"({"ID":""})", R"({})", R"({"ID":5})", R"({"ID":null})", R"([{"ID":"x"}])", "null", "",
                             R"("x")", R"({"ID":"x")", R"({"ID":"x"}x)"}) {
        BOOST_TEST_CONTEXT("body " << body)
        {
            session_id out("previous");
            BOOST_TEST((decode_session_created(body, out) == errc::bad_response));
            BOOST_TEST(out.str() == "previous");
        }
    }
}

namespace {

std::string session_json(std::string_view behavior_field = R"("Behavior":"release",)",
                         std::string_view ttl_field = R"("TTL":"15s",)")
{
    return R"({"ID":")" + sid + R"(","Name":"x","Node":"n","LockDelay":15000000000,)" + std::string(behavior_field) +
           std::string(ttl_field) + R"("NodeChecks":["serfHealth"],"ServiceChecks":null,"CreateIndex":10,"ModifyIndex":10})";
}

std::vector<session_entry> stale_sessions()
{
    session_entry s;
    s.name = "stale";
    return {s};
}

} // namespace

BOOST_AUTO_TEST_CASE(decode_session_entries_reads_a_consul_1_14_session)
{
    auto out = stale_sessions();
    BOOST_TEST(!decode_session_entries("[" + session_json() + "]", out));
    BOOST_REQUIRE(out.size() == 1u);
    const session_entry& s = out[0];
    BOOST_TEST(s.id.str() == sid);
    BOOST_TEST(s.name == "x");
    BOOST_TEST(s.node == "n");
    BOOST_TEST(s.lock_delay.count() == 15'000'000'000);
    BOOST_TEST((s.behavior == session_behavior::release));
    BOOST_TEST(s.ttl.count() == 15'000);
    BOOST_TEST((s.node_checks == std::vector<std::string>{"serfHealth"}));
    BOOST_TEST(s.service_checks.empty());
    BOOST_TEST(s.create_index == 10u);
    BOOST_TEST(s.modify_index == 10u);
}

BOOST_AUTO_TEST_CASE(decode_session_entries_reads_delete_behaviour)
{
    std::vector<session_entry> out;
    BOOST_TEST(!decode_session_entries("[" + session_json(R"("Behavior":"delete",)") + "]", out));
    BOOST_REQUIRE(out.size() == 1u);
    BOOST_TEST((out[0].behavior == session_behavior::delete_keys));
}

BOOST_AUTO_TEST_CASE(decode_session_entries_reads_an_empty_or_missing_ttl_as_none)
{
    for (const char* ttl : {R"("TTL":"",)", ""}) {
        std::vector<session_entry> out;
        BOOST_TEST(!decode_session_entries("[" + session_json(R"("Behavior":"release",)", ttl) + "]", out));
        BOOST_REQUIRE(out.size() == 1u);
        BOOST_TEST(out[0].ttl.count() == 0);
    }
}

BOOST_AUTO_TEST_CASE(decode_session_entries_reads_a_ttl_with_minutes)
{
    std::vector<session_entry> out;
    BOOST_TEST(!decode_session_entries("[" + session_json(R"("Behavior":"release",)", R"("TTL":"1m30s",)") + "]", out));
    BOOST_REQUIRE(out.size() == 1u);
    BOOST_TEST(out[0].ttl.count() == 90'000);
}

BOOST_AUTO_TEST_CASE(decode_session_entries_rejects_an_unknown_behaviour)
{
    auto out = stale_sessions();
    BOOST_TEST((decode_session_entries("[" + session_json(R"("Behavior":"destroy",)") + "]", out) ==
                errc::bad_response));
    BOOST_TEST(out.empty());
    out = stale_sessions();
    BOOST_TEST((decode_session_entries("[" + session_json(R"("Behavior":5,)") + "]", out) == errc::bad_response));
    BOOST_TEST(out.empty());
}

BOOST_AUTO_TEST_CASE(decode_session_entries_rejects_a_malformed_ttl_or_lock_delay)
{
    for (const std::string& body :
         {"[" + session_json(R"("Behavior":"release",)", R"("TTL":"15",)") + "]",
          "[" + session_json(R"("Behavior":"release",)", R"("TTL":15,)") + "]",
          "[" + session_json(R"("Behavior":"release",)", R"("TTL":"-15s",)") + "]",
          R"([{"ID":"x","LockDelay":-1,"CreateIndex":1,"ModifyIndex":1}])"s,
          R"([{"ID":"x","LockDelay":1.5,"CreateIndex":1,"ModifyIndex":1}])"s,
          R"([{"ID":"x","LockDelay":18446744073709551615,"CreateIndex":1,"ModifyIndex":1}])"s}) {
        BOOST_TEST_CONTEXT(body)
        {
            auto out = stale_sessions();
            BOOST_TEST((decode_session_entries(body, out) == errc::bad_response));
            BOOST_TEST(out.empty());
        }
    }
}

BOOST_AUTO_TEST_CASE(decode_session_entries_reads_null_and_empty_array_as_no_sessions)
{
    auto out = stale_sessions();
    BOOST_TEST(!decode_session_entries("null", out));
    BOOST_TEST(out.empty());
    out = stale_sessions();
    BOOST_TEST(!decode_session_entries("[]", out));
    BOOST_TEST(out.empty());
}

BOOST_AUTO_TEST_CASE(decode_session_entries_rejects_bad_bodies)
{
    for (const std::string& body : {""s, "{}"s, session_json(), "[" + session_json() + "]]", "[" + session_json(),
                                   R"([{"Name":"no id"}])"s, R"([{"ID":"","CreateIndex":1,"ModifyIndex":1}])"s,
                                   R"([{"ID":5,"CreateIndex":1,"ModifyIndex":1}])"s, nested(100000)}) {
        BOOST_TEST_CONTEXT(colock::detail::printable(body, 80))
        {
            auto out = stale_sessions();
            BOOST_TEST((decode_session_entries(body, out) == errc::bad_response));
            BOOST_TEST(out.empty());
        }
    }
}

BOOST_AUTO_TEST_CASE(decode_session_entries_reads_service_checks_and_legacy_checks)
{
    std::vector<session_entry> out;
    const std::string body = R"([{"ID":"s1","Checks":["serfHealth","c2"],"ServiceChecks":[{"ID":"svc:1","Namespace":""}],)"
                             R"("CreateIndex":1,"ModifyIndex":2}])";
    BOOST_TEST(!decode_session_entries(body, out));
    BOOST_REQUIRE(out.size() == 1u);
    BOOST_TEST((out[0].node_checks == std::vector<std::string>{"serfHealth", "c2"}));
    BOOST_TEST((out[0].service_checks == std::vector<std::string>{"svc:1"}));
    BOOST_TEST(out[0].lock_delay.count() == 0); // absent
    BOOST_TEST((out[0].behavior == session_behavior::release));

    out = stale_sessions();
    BOOST_TEST((decode_session_entries(R"([{"ID":"s1","ServiceChecks":[5],"CreateIndex":1,"ModifyIndex":2}])", out) ==
                errc::bad_response));
    BOOST_TEST(out.empty());
    out = stale_sessions();
    BOOST_TEST((decode_session_entries(R"([{"ID":"s1","NodeChecks":[5],"CreateIndex":1,"ModifyIndex":2}])", out) ==
                errc::bad_response));
    BOOST_TEST(out.empty());
}

// ---------------------------------------------------------------------------------------------------------------------
// Transactions

BOOST_AUTO_TEST_CASE(decode_txn_result_reads_a_committed_lock)
{
    const std::string body = R"({"Results":[{"KV":{"LockIndex":1,"Key":"k","Flags":3304740253564472344,"Value":null,)"
                             R"("Session":")" + sid + R"(","CreateIndex":20,"ModifyIndex":21}}],"Errors":null})";
    txn_result out;
    BOOST_TEST(!decode_txn_result(body, out));
    BOOST_REQUIRE(out.results.size() == 1u);
    const kv_entry& e = out.results[0];
    BOOST_TEST(e.key == "k");
    BOOST_TEST(e.value.empty());
    BOOST_TEST(e.flags == 3304740253564472344ull);
    BOOST_TEST(e.lock_index == 1u);
    BOOST_TEST(e.create_index == 20u);
    BOOST_TEST(e.modify_index == 21u);
    BOOST_REQUIRE(e.session.has_value());
    BOOST_TEST(e.session->str() == sid);
    BOOST_TEST(out.errors.empty());
}

BOOST_AUTO_TEST_CASE(decode_txn_result_reads_a_409_rollback)
{
    const std::string body =
        R"({"Results":null,"Errors":[{"OpIndex":0,"What":"failed to lock key \"k\", lock is already held"}]})";
    txn_result out;
    out.results = {sentinel_entry()};
    BOOST_TEST(!decode_txn_result(body, out));
    BOOST_TEST(out.results.empty());
    BOOST_REQUIRE(out.errors.size() == 1u);
    BOOST_TEST(out.errors[0].op_index == 0u);
    BOOST_TEST(out.errors[0].what == R"(failed to lock key "k", lock is already held)");
}

BOOST_AUTO_TEST_CASE(decode_txn_result_skips_results_of_other_kinds)
{
    const std::string body = R"({"Results":[{"Node":{"ID":"n"}},{"KV":{"LockIndex":0,"Key":"a","Flags":0,"Value":"dmFs",)"
                              R"("CreateIndex":5,"ModifyIndex":6}}],"Errors":[]})";
    txn_result out;
    BOOST_TEST(!decode_txn_result(body, out));
    BOOST_REQUIRE(out.results.size() == 1u);
    BOOST_TEST(out.results[0].value == "val");
}

BOOST_AUTO_TEST_CASE(decode_txn_result_rejects_bad_bodies_and_leaves_nothing_behind)
{
    for (const std::string& body : {
             ""s, "null"s, "[]"s, R"({"Results":{}})"s, R"({"Results":[5]})"s, R"({"Errors":{}})"s,
             R"({"Errors":[5]})"s, R"({"Errors":[{"OpIndex":-1,"What":"x"}]})"s,
             R"({"Errors":[{"OpIndex":1.0,"What":"x"}]})"s, R"({"Errors":[{"OpIndex":"0","What":"x"}]})"s,
             R"({"Errors":[{"What":"x"}]})"s, R"({"Errors":[{"OpIndex":0,"What":5}]})"s,
             R"({"Results":[{"KV":{"Key":"k"}}]})"s,
             R"({"Results":[{"KV":{"LockIndex":1,"Key":"k","Flags":0,"Value":"!!","CreateIndex":1,"ModifyIndex":1}}]})"s,
             R"({"Results":[],"Errors":[]} x)"s, R"({"Results":[)"s, nested(100000)}) {
        BOOST_TEST_CONTEXT(colock::detail::printable(body, 80))
        {
            txn_result out;
            out.results = {sentinel_entry()};
            out.errors = {{1, "stale"}};
            BOOST_TEST((decode_txn_result(body, out) == errc::bad_response));
            BOOST_TEST(out.results.empty());
            BOOST_TEST(out.errors.empty());
        }
    }
}

BOOST_AUTO_TEST_CASE(decode_json_string_reads_a_string_and_rejects_anything_else)
{
    std::string out = "previous";
    BOOST_TEST(!decode_json_string(R"("127.0.0.1:8300")", out));
    BOOST_TEST(out == "127.0.0.1:8300");
    BOOST_TEST(!decode_json_string(R"("")", out));
    BOOST_TEST(out.empty());
    for (const char* body : {"", "5", "null", "[]", R"(["a"])", R"("a)", R"("a" "b")", "{}"}) {
        BOOST_TEST_CONTEXT("body " << body)
        {
            out = "previous";
            BOOST_TEST((decode_json_string(body, out) == errc::bad_response));
            BOOST_TEST(out == "previous");
        }
    }
}

BOOST_AUTO_TEST_CASE(decode_agent_datacenter_reads_config_datacenter_and_rejects_anything_else)
{
    std::string out = "previous";
    BOOST_TEST(!decode_agent_datacenter(R"({"Config":{"Datacenter":"dc1","NodeName":"n"},"Member":{}})", out));
    BOOST_TEST(out == "dc1");
    for (const char* body : {"", "{}", "[]", R"({"Config":{}})", R"({"Config":"dc1"})", R"({"Config":{"Datacenter":""}})",
                             R"({"Config":{"Datacenter":7}})", R"({"Datacenter":"dc1"})", R"({"Config":{"Datacenter":"dc1")"}) {
        BOOST_TEST_CONTEXT("body " << body)
        {
            out = "previous";
            BOOST_TEST((decode_agent_datacenter(body, out) == errc::bad_response));
            BOOST_TEST(out == "previous");
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// Header numbers

BOOST_AUTO_TEST_CASE(parse_uint64_accepts_the_full_range)
{
    BOOST_TEST((parse_uint64("0") == std::optional<std::uint64_t>(0)));
    BOOST_TEST((parse_uint64("1") == std::optional<std::uint64_t>(1)));
    BOOST_TEST((parse_uint64("18446744073709551615") == std::optional<std::uint64_t>(UINT64_MAX)));
    BOOST_TEST((parse_uint64("16210313421097356768") == std::optional<std::uint64_t>(16210313421097356768ull)));
}

BOOST_AUTO_TEST_CASE(parse_uint64_rejects_signs_spaces_garbage_and_overflow)
{
    for (const std::string& text : {"18446744073709551616"s, "18446744073709551620"s, "99999999999999999999"s,
                                   "184467440737095516150"s, "-1"s, "+1"s, " 1"s, "1 "s, "1a"s, ""s, "0x10"s, "1.0"s,
                                   "1e3"s, "\0"s, "1\0"s}) {
        BOOST_TEST_CONTEXT("'" << colock::detail::printable(text) << "'")
        {
            BOOST_TEST(!parse_uint64(text).has_value());
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// Encoders

namespace {

json::object txn_kv(const std::string& body, std::size_t i)
{
    const json::value v = json::parse(body);
    BOOST_REQUIRE(v.is_array());
    BOOST_REQUIRE(v.get_array().size() > i);
    const auto& op = v.get_array()[i].as_object();
    BOOST_REQUIRE(op.size() == 1u);
    return op.at("KV").as_object();
}

// Rebuilds a txn_op from its encoded form; absent fields read as the defaults.
txn_op op_from_json(const json::object& kv)
{
    txn_op op;
    const std::string verb(kv.at("Verb").as_string());
    bool found = false;
    for (auto v : {txn_verb::set, txn_verb::cas, txn_verb::lock, txn_verb::unlock, txn_verb::get, txn_verb::get_or_empty,
                   txn_verb::get_tree, txn_verb::check_index, txn_verb::check_session, txn_verb::check_not_exists,
                   txn_verb::delete_key, txn_verb::delete_tree, txn_verb::delete_cas}) {
        if (txn_verb_name(v) == verb) {
            op.verb = v;
            found = true;
        }
    }
    BOOST_TEST_REQUIRE(found, "unknown verb " << verb);
    op.key = std::string(kv.at("Key").as_string());
    if (const auto* v = kv.if_contains("Value")) {
        const auto bytes = colock::detail::base64_decode(v->as_string());
        BOOST_TEST_REQUIRE(bytes.has_value());
        op.value = *bytes;
    }
    if (const auto* v = kv.if_contains("Flags"))
        op.flags = v->to_number<std::uint64_t>();
    if (const auto* v = kv.if_contains("Index"))
        op.index = v->to_number<std::uint64_t>();
    if (const auto* v = kv.if_contains("Session"))
        op.session = session_id(std::string(v->as_string()));
    for (const auto& field : kv) {
        const std::string_view name = field.key();
        BOOST_TEST((name == "Verb" || name == "Key" || name == "Value" || name == "Flags" || name == "Index" ||
                    name == "Session"),
                   "unexpected field " << name);
    }
    return op;
}

} // namespace

BOOST_AUTO_TEST_CASE(encode_txn_writes_a_lock_op_with_verb_value_flags_and_session)
{
    const std::string body = encode_txn({txn_op::lock("service/leader", session_id(sid), "val")});
    const json::object kv = txn_kv(body, 0);
    BOOST_TEST(kv.at("Verb").as_string() == "lock");
    BOOST_TEST(kv.at("Key").as_string() == "service/leader");
    BOOST_TEST(kv.at("Value").as_string() == "dmFs");
    BOOST_REQUIRE(kv.contains("Flags")); // present even when 0: an omitted Flags is stored as 0
    BOOST_TEST(kv.at("Flags").to_number<std::uint64_t>() == 0u);
    BOOST_TEST(kv.at("Session").as_string() == sid);
    BOOST_TEST(!kv.contains("Index"));
}

BOOST_AUTO_TEST_CASE(encode_txn_writes_flags_on_every_write_verb)
{
    for (const txn_op& op : {txn_op::set("k", "v"), txn_op::cas("k", "v", 5), txn_op::lock("k", session_id(sid), "v"),
                             txn_op::unlock("k", session_id(sid), "v")}) {
        BOOST_TEST_CONTEXT(txn_verb_name(op.verb))
        {
            const json::object kv = txn_kv(encode_txn({op}), 0);
            BOOST_TEST(kv.contains("Flags"));
        }
    }
    // A read carries no Flags unless set.
    BOOST_TEST(!txn_kv(encode_txn({txn_op::get("k")}), 0).contains("Flags"));
}

BOOST_AUTO_TEST_CASE(encode_txn_writes_the_index_of_a_cas_op)
{
    const json::object kv = txn_kv(encode_txn({txn_op::cas("k", "v", 42, 16210313421097356768ull)}), 0);
    BOOST_TEST(kv.at("Verb").as_string() == "cas");
    BOOST_TEST(kv.at("Index").to_number<std::uint64_t>() == 42u);
    BOOST_TEST(kv.at("Flags").to_number<std::uint64_t>() == 16210313421097356768ull);
    BOOST_TEST(!kv.contains("Session"));
    // Index 0 on a cas means "only if absent", so it is written too.
    BOOST_TEST(txn_kv(encode_txn({txn_op::cas("k", "v", 0)}), 0).at("Index").to_number<std::uint64_t>() == 0u);
    BOOST_TEST(txn_kv(encode_txn({txn_op::check_index("k", 0)}), 0).contains("Index"));
    BOOST_TEST(txn_kv(encode_txn({txn_op::delete_cas("k", 0)}), 0).contains("Index"));
}

BOOST_AUTO_TEST_CASE(encode_txn_writes_an_empty_list_as_an_empty_array)
{
    BOOST_TEST(encode_txn({}) == "[]");
}

BOOST_AUTO_TEST_CASE(encode_txn_round_trips_every_verb_and_awkward_bytes)
{
    const std::string awkward_key = "a\"b\\c\n\x01/\xc3\xa9";
    const std::string binary = "\0\xff\x80\"\\"s;
    const std::vector<txn_op> ops = {
        txn_op::set(awkward_key, binary, std::numeric_limits<std::uint64_t>::max()),
        txn_op::cas("k", "v", std::numeric_limits<std::uint64_t>::max(), 1),
        txn_op::lock("k", session_id(sid), "", 3304740253564472344ull),
        txn_op::unlock("k", session_id(sid), "x"),
        txn_op::get("k"),
        txn_op::get_or_empty("k"),
        txn_op::get_tree("prefix/"),
        txn_op::check_index("k", 17),
        txn_op::check_session("k", session_id(sid)),
        txn_op::check_not_exists("k"),
        txn_op::delete_key("k"),
        txn_op::delete_tree("prefix/"),
        txn_op::delete_cas("k", 99),
    };
    const std::string body = encode_txn(ops);
    const json::value v = json::parse(body);
    BOOST_REQUIRE(v.is_array());
    BOOST_REQUIRE(v.get_array().size() == ops.size());
    for (std::size_t i = 0; i < ops.size(); ++i) {
        BOOST_TEST_CONTEXT("op " << i << " " << txn_verb_name(ops[i].verb))
        {
            const txn_op back = op_from_json(txn_kv(body, i));
            BOOST_TEST((back.verb == ops[i].verb));
            BOOST_TEST(back.key == ops[i].key);
            BOOST_TEST((back.value == ops[i].value));
            BOOST_TEST(back.flags == ops[i].flags);
            BOOST_TEST(back.index == ops[i].index);
            BOOST_TEST((back.session == ops[i].session));
        }
    }
}

BOOST_AUTO_TEST_CASE(txn_verb_names_match_consul)
{
    BOOST_TEST(txn_verb_name(txn_verb::set) == "set");
    BOOST_TEST(txn_verb_name(txn_verb::cas) == "cas");
    BOOST_TEST(txn_verb_name(txn_verb::lock) == "lock");
    BOOST_TEST(txn_verb_name(txn_verb::unlock) == "unlock");
    BOOST_TEST(txn_verb_name(txn_verb::get) == "get");
    BOOST_TEST(txn_verb_name(txn_verb::get_or_empty) == "get-or-empty");
    BOOST_TEST(txn_verb_name(txn_verb::get_tree) == "get-tree");
    BOOST_TEST(txn_verb_name(txn_verb::check_index) == "check-index");
    BOOST_TEST(txn_verb_name(txn_verb::check_session) == "check-session");
    BOOST_TEST(txn_verb_name(txn_verb::check_not_exists) == "check-not-exists");
    BOOST_TEST(txn_verb_name(txn_verb::delete_key) == "delete");
    BOOST_TEST(txn_verb_name(txn_verb::delete_tree) == "delete-tree");
    BOOST_TEST(txn_verb_name(txn_verb::delete_cas) == "delete-cas");
}

namespace {

json::object session_body(const session_options& s)
{
    const json::value v = json::parse(encode_session_create(s));
    BOOST_REQUIRE(v.is_object());
    return v.get_object();
}

} // namespace

BOOST_AUTO_TEST_CASE(encode_session_create_writes_the_defaults)
{
    const json::object o = session_body(session_options{});
    BOOST_TEST(o.at("Name").as_string() == "colock");
    BOOST_TEST(o.at("TTL").as_string() == "15000ms");
    BOOST_TEST(o.at("Behavior").as_string() == "release");
    BOOST_TEST(!o.contains("LockDelay")); // nullopt: Consul's default
    BOOST_TEST(!o.contains("NodeChecks"));
    BOOST_TEST(!o.contains("Checks"));
    BOOST_TEST(!o.contains("ServiceChecks"));
    BOOST_TEST(!o.contains("Node"));
}

BOOST_AUTO_TEST_CASE(encode_session_create_writes_lock_delay_zero_as_0s)
{
    session_options s;
    s.lock_delay = 0ms;
    BOOST_TEST(session_body(s).at("LockDelay").as_string() == "0s");
    s.lock_delay = 250ms;
    BOOST_TEST(session_body(s).at("LockDelay").as_string() == "250ms");
}

BOOST_AUTO_TEST_CASE(encode_session_create_writes_an_empty_check_list_as_both_empty_arrays)
{
    session_options s;
    s.node_checks = std::vector<std::string>{};
    const json::object o = session_body(s);
    BOOST_REQUIRE(o.contains("NodeChecks"));
    BOOST_REQUIRE(o.contains("Checks"));
    BOOST_TEST(o.at("NodeChecks").as_array().empty());
    BOOST_TEST(o.at("Checks").as_array().empty());
}

BOOST_AUTO_TEST_CASE(encode_session_create_writes_explicit_node_checks_only_as_node_checks)
{
    session_options s;
    s.node_checks = std::vector<std::string>{"serfHealth", "disk"};
    const json::object o = session_body(s);
    BOOST_TEST((o.at("NodeChecks") == json::array{"serfHealth", "disk"}));
    BOOST_TEST(!o.contains("Checks"));
}

BOOST_AUTO_TEST_CASE(encode_session_create_writes_delete_behaviour)
{
    session_options s;
    s.behavior = session_behavior::delete_keys;
    BOOST_TEST(session_body(s).at("Behavior").as_string() == "delete");
}

BOOST_AUTO_TEST_CASE(encode_session_create_writes_ttl_in_milliseconds_and_omits_zero)
{
    session_options s;
    s.ttl = 1s;
    BOOST_TEST(session_body(s).at("TTL").as_string() == "1000ms");
    s.ttl = 0ms;
    BOOST_TEST(!session_body(s).contains("TTL"));
}

BOOST_AUTO_TEST_CASE(encode_session_create_writes_node_name_and_service_checks)
{
    session_options s;
    s.name = "";
    s.node = "node-1";
    s.service_checks = {"service:web"};
    const json::object o = session_body(s);
    BOOST_TEST(!o.contains("Name"));
    BOOST_TEST(o.at("Node").as_string() == "node-1");
    BOOST_TEST((o.at("ServiceChecks") == json::array{json::object{{"ID", "service:web"}}}));
}

BOOST_AUTO_TEST_CASE(encode_session_create_escapes_awkward_names)
{
    session_options s;
    s.name = "a\"b\\c\n\x01";
    BOOST_TEST(session_body(s).at("Name").as_string() == "a\"b\\c\n\x01");
}

BOOST_AUTO_TEST_SUITE_END()
