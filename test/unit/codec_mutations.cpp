// Seeded mutation testing of the JSON decoders (a fuzzer's job, run in the unit tier): mutated
// copies of real Consul bodies must decode or be refused with errc::bad_response, never crash
// (ASan/UBSan watch), and a refusal must leave no partial result.

#include "consul/codec.hpp"

#include <boost/test/unit_test.hpp>

#include <random>
#include <string>
#include <vector>

using namespace colock;
using namespace colock::consul;
using namespace colock::consul::detail;

namespace {

const std::vector<std::string> kv_bodies = {
    R"([{"LockIndex":1,"Key":"locks/a","Flags":3304740253564472344,"Value":"aGVsZA==","Session":"adf4238a-882b-9ddc-4a9d-5b6758e4159e","CreateIndex":10,"ModifyIndex":12}])",
    R"([{"LockIndex":0,"Key":"k","Flags":0,"Value":null,"CreateIndex":3,"ModifyIndex":3},{"LockIndex":2,"Key":"k/b","Flags":16210313421097356768,"Value":"e30=","CreateIndex":4,"ModifyIndex":9}])",
};
const std::string session_body =
    R"([{"ID":"adf4238a-882b-9ddc-4a9d-5b6758e4159e","Name":"x","Node":"n","LockDelay":15000000000,"Behavior":"release","TTL":"15s","NodeChecks":["serfHealth"],"ServiceChecks":null,"CreateIndex":10,"ModifyIndex":10}])";
const std::string txn_body =
    R"({"Results":[{"KV":{"LockIndex":1,"Key":"k","Flags":7,"Value":null,"Session":"adf4238a-882b-9ddc-4a9d-5b6758e4159e","CreateIndex":5,"ModifyIndex":5}}],"Errors":null})";

// One random edit: flip a byte, delete a span, insert JSON-ish bytes, duplicate a span, or truncate.
std::string mutate(std::string s, std::mt19937& rng)
{
    using namespace std::string_literals;
    static const std::string alphabet = "{}[]\",:0123456789-+.eE truefalsnul\\\0\xff\x7f"s; // NUL included
    auto pick = [&](std::size_t n) { return n == 0 ? 0 : std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
    const int edits = 1 + static_cast<int>(pick(3));
    for (int i = 0; i < edits && !s.empty(); ++i) {
        const std::size_t at = pick(s.size());
        switch (pick(5)) {
        case 0: s[at] = static_cast<char>(pick(256)); break;
        case 1: s.erase(at, 1 + pick(8)); break;
        case 2: s.insert(at, 1, alphabet[pick(alphabet.size())]); break;
        case 3: s.insert(at, s.substr(at, 1 + pick(16))); break;
        default: s.resize(at); break;
        }
    }
    return s;
}

} // namespace

BOOST_AUTO_TEST_SUITE(test_codec_mutations)

BOOST_AUTO_TEST_CASE(mutated_bodies_decode_or_are_refused_cleanly)
{
    std::mt19937 rng(20261124); // fixed seed: a failure is reproducible
    std::size_t accepted = 0, refused = 0;
    for (int round = 0; round < 4000; ++round) {
        for (const auto& seed : kv_bodies) {
            const std::string body = mutate(seed, rng);
            std::vector<kv_entry> entries;
            const auto ec = decode_kv_entries(body, entries);
            if (ec) {
                BOOST_TEST_REQUIRE((ec == errc::bad_response), "body: " << body);
                BOOST_TEST_REQUIRE(entries.empty(), "partial result for body: " << body);
                ++refused;
            } else {
                ++accepted;
            }
        }
        {
            const std::string body = mutate(session_body, rng);
            std::vector<session_entry> sessions;
            if (const auto ec = decode_session_entries(body, sessions)) {
                BOOST_TEST_REQUIRE((ec == errc::bad_response));
                BOOST_TEST_REQUIRE(sessions.empty(), "partial result for body: " << body);
                ++refused;
            } else {
                ++accepted;
            }
        }
        {
            const std::string body = mutate(txn_body, rng);
            txn_result r;
            if (const auto ec = decode_txn_result(body, r)) {
                BOOST_TEST_REQUIRE((ec == errc::bad_response));
                BOOST_TEST_REQUIRE(r.results.empty(), "partial result for body: " << body);
                BOOST_TEST_REQUIRE(r.errors.empty(), "partial result for body: " << body);
                ++refused;
            } else {
                ++accepted;
            }
        }
        {
            bool b = false;
            const auto ec = decode_bool(mutate("true\n", rng), b);
            BOOST_TEST_REQUIRE((!ec || ec == errc::bad_response));
        }
    }
    // The mutations must exercise both paths, or the test proves nothing.
    BOOST_TEST(refused > 1000u);
    BOOST_TEST(accepted > 100u);
    BOOST_TEST_MESSAGE("accepted " << accepted << ", refused " << refused);
}

BOOST_AUTO_TEST_CASE(the_unmutated_seeds_decode)
{
    for (const auto& seed : kv_bodies) {
        std::vector<kv_entry> entries;
        BOOST_TEST(!decode_kv_entries(seed, entries));
        BOOST_TEST(!entries.empty());
    }
    std::vector<session_entry> sessions;
    BOOST_TEST(!decode_session_entries(session_body, sessions));
    txn_result r;
    BOOST_TEST(!decode_txn_result(txn_body, r));
}

BOOST_AUTO_TEST_SUITE_END()
