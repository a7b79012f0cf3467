#ifndef COLOCK_TEST_COMMON_KV_PROBE_HPP
#define COLOCK_TEST_COMMON_KV_PROBE_HPP

// What Consul itself says about a key or a session, read through the harness (synchronous, independent of the
// library under test): for checking what a recipe wrote, and for playing the operator (destroy a session, delete or
// release a key by hand).

#include "consul_agent.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>

namespace colock::test {

/// A key as a `?consistent` read shows it.
struct key_state {
    bool exists = false;
    std::uint64_t flags = 0;
    std::uint64_t modify_index = 0;
    std::uint64_t lock_index = 0;
    std::string session; ///< "" when the key is not locked
};

inline std::uint64_t json_uint64(const boost::json::object& o, const char* name)
{
    const auto* v = o.if_contains(name);
    if (!v)
        return 0;
    // Flags above INT64_MAX arrive as uint64; the rest as int64. Never through a double.
    if (v->is_uint64())
        return v->as_uint64();
    if (v->is_int64() && v->as_int64() >= 0)
        return static_cast<std::uint64_t>(v->as_int64());
    throw std::runtime_error(std::string("kv probe: ") + name + " is not an unsigned integer");
}

inline key_state read_key(const std::string& key)
{
    auto r = consul_agent::instance().request("GET", "/v1/kv/" + key + "?consistent");
    if (r.status == 404)
        return {};
    if (r.status != 200)
        throw std::runtime_error("kv probe: GET " + key + " answered " + std::to_string(r.status) + ": " + r.body);
    const auto v = boost::json::parse(r.body);
    const auto& o = v.as_array().at(0).as_object();
    key_state k;
    k.exists = true;
    k.flags = json_uint64(o, "Flags");
    k.modify_index = json_uint64(o, "ModifyIndex");
    k.lock_index = json_uint64(o, "LockIndex");
    if (const auto* s = o.if_contains("Session"); s && s->is_string())
        k.session = std::string(s->as_string());
    return k;
}

/// The key's value as stored (`?raw`); empty optional when the key does not exist.
inline std::optional<std::string> raw_value(const std::string& key)
{
    auto r = consul_agent::instance().request("GET", "/v1/kv/" + key + "?raw&consistent");
    if (r.status == 404)
        return std::nullopt;
    if (r.status != 200)
        throw std::runtime_error("kv probe: GET " + key + "?raw answered " + std::to_string(r.status));
    return r.body;
}

/// A plain PUT of `value` with `flags` (no cas, acquire or release): what an unrelated writer does.
inline void put_key(const std::string& key, const std::string& value, std::uint64_t flags)
{
    auto r = consul_agent::instance().request("PUT", "/v1/kv/" + key + "?flags=" + std::to_string(flags), value);
    BOOST_TEST_REQUIRE(r.status == 200u, "PUT " << key << ": " << r.body);
}

/// Deletes a key as an operator would.
inline void delete_key(const std::string& key)
{
    auto r = consul_agent::instance().request("DELETE", "/v1/kv/" + key);
    BOOST_TEST_REQUIRE(r.status == 200u, "DELETE " << key << ": " << r.body);
}

/// Destroys a session as an operator would (Consul applies lock-delay to the keys it held).
inline void destroy_session(const std::string& id)
{
    auto r = consul_agent::instance().request("PUT", "/v1/session/destroy/" + id);
    BOOST_TEST_REQUIRE(r.status == 200u, "destroy " << id << ": " << r.body);
}

/// Creates a session by hand (no TTL, no checks, the given lock-delay); returns its id.
inline std::string create_raw_session(const std::string& name, const std::string& lock_delay = "0s")
{
    const std::string body = R"({"Name":")" + name + R"(","LockDelay":")" + lock_delay + R"(","NodeChecks":[]})";
    auto r = consul_agent::instance().request("PUT", "/v1/session/create", body);
    if (r.status != 200)
        throw std::runtime_error("kv probe: session create answered " + std::to_string(r.status) + ": " + r.body);
    return std::string(boost::json::parse(r.body).as_object().at("ID").as_string());
}

/// `PUT ?acquire=` or `?release=` with `flags`, as Go's api.Lock writes them; returns Consul's verdict.
inline bool raw_lock_write(const std::string& key, const char* verb, const std::string& session, std::uint64_t flags,
                           const std::string& value = {})
{
    auto r = consul_agent::instance().request(
        "PUT", "/v1/kv/" + key + "?" + verb + "=" + session + "&flags=" + std::to_string(flags), value);
    if (r.status != 200)
        throw std::runtime_error(std::string("kv probe: ") + verb + " answered " + std::to_string(r.status) + ": " +
                                 r.body);
    return r.body.find("true") != std::string::npos;
}

/// `<prefix>/.lock`, a semaphore's record, as Consul stores it.
struct semaphore_record_state {
    bool exists = false;
    std::uint64_t flags = 0;
    std::int64_t limit = 0;
    std::set<std::string> holders; ///< every key of Holders, whatever its value (as Go counts them)
};

inline semaphore_record_state read_semaphore_record(const std::string& prefix)
{
    semaphore_record_state r;
    const auto key = read_key(prefix + "/.lock");
    const auto value = raw_value(prefix + "/.lock");
    if (!key.exists || !value)
        return r;
    r.exists = true;
    r.flags = key.flags;
    if (value->empty())
        return r;
    const auto v = boost::json::parse(*value);
    const auto& o = v.as_object();
    r.limit = o.at("Limit").to_number<std::int64_t>();
    if (const auto* h = o.if_contains("Holders"); h && h->is_object())
        for (const auto& kv : h->as_object())
            r.holders.emplace(kv.key());
    return r;
}

/// The sessions of a semaphore's contender keys under `prefix` (every key but `.lock`).
inline std::set<std::string> contender_sessions(const std::string& prefix)
{
    std::set<std::string> out;
    for (const auto& k : consul_agent::instance().keys_under(prefix + "/")) {
        const auto name = k.substr(k.rfind('/') + 1);
        if (name != ".lock")
            out.insert(name);
    }
    return out;
}

} // namespace colock::test

#endif
