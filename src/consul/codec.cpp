#include "consul/codec.hpp"

#include "detail/encoding.hpp"
#include "detail/go_duration.hpp"

#include <boost/json.hpp>

namespace colock::consul::detail {
namespace json = boost::json;
namespace {

const error_code bad = make_error_code(errc::bad_response);

// Parses with Boost.JSON's default depth limit (deep nesting is an error, not a stack overflow).
bool parse(std::string_view body, json::value& out)
{
    error_code ec;
    json::parse_options opts;
    opts.max_depth = 32;
    out = json::parse(body, ec, {}, opts);
    return !ec;
}

bool get_u64(const json::object& o, std::string_view name, std::uint64_t& out)
{
    const json::value* v = o.if_contains(name);
    if (!v)
        return false;
    if (v->is_uint64()) {
        out = v->get_uint64();
        return true;
    }
    if (v->is_int64() && v->get_int64() >= 0) {
        out = static_cast<std::uint64_t>(v->get_int64());
        return true;
    }
    return false; // negative, float, string, ...
}

// A string field: absent or null -> empty when optional; anything else but a string is an error.
bool get_string(const json::object& o, std::string_view name, std::string& out, bool required)
{
    const json::value* v = o.if_contains(name);
    if (!v || v->is_null()) {
        out.clear();
        return !required;
    }
    if (!v->is_string())
        return false;
    out.assign(v->get_string().data(), v->get_string().size());
    return true;
}

bool get_string_list(const json::object& o, std::string_view name, std::vector<std::string>& out)
{
    out.clear();
    const json::value* v = o.if_contains(name);
    if (!v || v->is_null())
        return true;
    if (!v->is_array())
        return false;
    for (const auto& item : v->get_array()) {
        if (!item.is_string())
            return false;
        out.emplace_back(item.get_string().data(), item.get_string().size());
    }
    return true;
}

bool decode_kv_object(const json::value& v, kv_entry& e)
{
    if (!v.is_object())
        return false;
    const auto& o = v.get_object();
    std::string value_b64, session;
    if (!get_string(o, "Key", e.key, true) || !get_u64(o, "CreateIndex", e.create_index) ||
        !get_u64(o, "ModifyIndex", e.modify_index) || !get_u64(o, "LockIndex", e.lock_index) ||
        !get_u64(o, "Flags", e.flags) || !get_string(o, "Value", value_b64, false) ||
        !get_string(o, "Session", session, false))
        return false;
    auto value = colock::detail::base64_decode(value_b64);
    if (!value)
        return false;
    e.value = std::move(*value);
    if (session.empty())
        e.session.reset();
    else
        e.session = session_id(std::move(session));
    return true;
}

bool decode_session_object(const json::value& v, session_entry& s)
{
    if (!v.is_object())
        return false;
    const auto& o = v.get_object();
    std::string id, behavior, ttl;
    std::uint64_t lock_delay = 0;
    if (!get_string(o, "ID", id, true) || id.empty() || !get_string(o, "Name", s.name, false) ||
        !get_string(o, "Node", s.node, false) || !get_string(o, "Behavior", behavior, false) ||
        !get_string(o, "TTL", ttl, false) || !get_u64(o, "CreateIndex", s.create_index) ||
        !get_u64(o, "ModifyIndex", s.modify_index))
        return false;
    if (o.contains("LockDelay") && !get_u64(o, "LockDelay", lock_delay))
        return false;
    if (lock_delay > static_cast<std::uint64_t>(std::chrono::nanoseconds::max().count()))
        return false;
    s.id = session_id(std::move(id));
    s.lock_delay = std::chrono::nanoseconds(static_cast<std::int64_t>(lock_delay));
    if (behavior.empty() || behavior == "release")
        s.behavior = session_behavior::release;
    else if (behavior == "delete")
        s.behavior = session_behavior::delete_keys;
    else
        return false;
    if (ttl.empty()) {
        s.ttl = std::chrono::milliseconds(0);
    } else {
        auto d = colock::detail::parse_go_duration(ttl);
        if (!d)
            return false;
        s.ttl = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
    }
    if (!get_string_list(o, "NodeChecks", s.node_checks))
        return false;
    if (s.node_checks.empty() && !get_string_list(o, "Checks", s.node_checks))
        return false;
    s.service_checks.clear();
    if (const json::value* sc = o.if_contains("ServiceChecks"); sc && !sc->is_null()) {
        if (!sc->is_array())
            return false;
        for (const auto& item : sc->get_array()) {
            if (!item.is_object())
                return false;
            std::string check;
            if (!get_string(item.get_object(), "ID", check, true))
                return false;
            s.service_checks.push_back(std::move(check));
        }
    }
    return true;
}

} // namespace

error_code decode_kv_entries(std::string_view body, std::vector<kv_entry>& out)
{
    out.clear();
    json::value v;
    if (!parse(body, v) || !v.is_array())
        return bad;
    std::vector<kv_entry> entries;
    entries.reserve(v.get_array().size());
    for (const auto& item : v.get_array()) {
        kv_entry e;
        if (!decode_kv_object(item, e))
            return bad;
        entries.push_back(std::move(e));
    }
    out = std::move(entries);
    return {};
}

error_code decode_keys(std::string_view body, std::vector<std::string>& out)
{
    out.clear();
    json::value v;
    if (!parse(body, v) || !v.is_array())
        return bad;
    std::vector<std::string> keys;
    for (const auto& item : v.get_array()) {
        if (!item.is_string())
            return bad;
        keys.emplace_back(item.get_string().data(), item.get_string().size());
    }
    out = std::move(keys);
    return {};
}

error_code decode_bool(std::string_view body, bool& out)
{
    const auto first = body.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos)
        return bad;
    const auto last = body.find_last_not_of(" \t\r\n");
    const auto word = body.substr(first, last - first + 1);
    if (word == "true")
        out = true;
    else if (word == "false")
        out = false;
    else
        return bad;
    return {};
}

error_code decode_session_created(std::string_view body, session_id& out)
{
    json::value v;
    if (!parse(body, v) || !v.is_object())
        return bad;
    std::string id;
    if (!get_string(v.get_object(), "ID", id, true) || id.empty())
        return bad;
    out = session_id(std::move(id));
    return {};
}

error_code decode_session_entries(std::string_view body, std::vector<session_entry>& out)
{
    out.clear();
    json::value v;
    if (!parse(body, v))
        return bad;
    if (v.is_null())
        return {}; // some versions answer null for "none"
    if (!v.is_array())
        return bad;
    std::vector<session_entry> sessions;
    for (const auto& item : v.get_array()) {
        session_entry s;
        if (!decode_session_object(item, s))
            return bad;
        sessions.push_back(std::move(s));
    }
    out = std::move(sessions);
    return {};
}

error_code decode_session_renewal(std::string_view body, session_entry& out, bool& vanished)
{
    out = session_entry{};
    vanished = false;
    std::vector<session_entry> full;
    if (!decode_session_entries(body, full)) {
        if (full.size() > 1)
            return bad;
        vanished = full.empty();
        if (!vanished)
            out = std::move(full[0]);
        return {};
    }
    json::value v;
    if (!parse(body, v) || !v.is_array() || v.get_array().size() != 1 || !v.get_array()[0].is_object())
        return bad;
    const auto& o = v.get_array()[0].get_object();
    std::string id, ttl;
    if (!get_string(o, "ID", id, true) || id.empty() || !get_string(o, "TTL", ttl, false))
        return bad;
    if (!ttl.empty()) {
        auto d = colock::detail::parse_go_duration(ttl);
        if (!d)
            return bad;
        out.ttl = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
    }
    out.id = session_id(std::move(id));
    return {};
}

error_code decode_txn_result(std::string_view body, txn_result& out)
{
    out.results.clear();
    out.errors.clear();
    json::value v;
    if (!parse(body, v) || !v.is_object())
        return bad;
    const auto& o = v.get_object();
    txn_result r;
    if (const json::value* results = o.if_contains("Results"); results && !results->is_null()) {
        if (!results->is_array())
            return bad;
        for (const auto& item : results->get_array()) {
            if (!item.is_object())
                return bad;
            const json::value* kv = item.get_object().if_contains("KV");
            if (!kv)
                continue; // a result of another kind (node, service, ...): not ours to decode
            kv_entry e;
            if (!decode_kv_object(*kv, e))
                return bad;
            r.results.push_back(std::move(e));
        }
    }
    if (const json::value* errors = o.if_contains("Errors"); errors && !errors->is_null()) {
        if (!errors->is_array())
            return bad;
        for (const auto& item : errors->get_array()) {
            if (!item.is_object())
                return bad;
            txn_error err;
            std::uint64_t index = 0;
            if (!get_u64(item.get_object(), "OpIndex", index) || !get_string(item.get_object(), "What", err.what, false))
                return bad;
            err.op_index = static_cast<std::size_t>(index);
            r.errors.push_back(std::move(err));
        }
    }
    out.results = std::move(r.results);
    out.errors = std::move(r.errors);
    return {};
}

error_code decode_json_string(std::string_view body, std::string& out)
{
    json::value v;
    if (!parse(body, v) || !v.is_string())
        return bad;
    out.assign(v.get_string().data(), v.get_string().size());
    return {};
}

error_code decode_agent_datacenter(std::string_view body, std::string& out)
{
    json::value v;
    if (!parse(body, v) || !v.is_object())
        return bad;
    const auto* config = v.get_object().if_contains("Config");
    if (!config || !config->is_object())
        return bad;
    const auto* dc = config->get_object().if_contains("Datacenter");
    if (!dc || !dc->is_string() || dc->get_string().empty())
        return bad;
    out.assign(dc->get_string().data(), dc->get_string().size());
    return {};
}

std::string encode_session_create(const session_options& s)
{
    json::object o;
    if (!s.name.empty())
        o["Name"] = s.name;
    if (!s.node.empty())
        o["Node"] = s.node;
    if (s.ttl.count() > 0)
        o["TTL"] = colock::detail::format_go_duration(s.ttl);
    if (s.lock_delay)
        o["LockDelay"] = colock::detail::format_go_duration(*s.lock_delay); // "0s" disables it
    o["Behavior"] = s.behavior == session_behavior::delete_keys ? "delete" : "release";
    if (s.node_checks) {
        json::array checks;
        for (const auto& c : *s.node_checks)
            checks.emplace_back(c);
        if (checks.empty())
            o["Checks"] = json::array(); // also clears the default on servers older than 1.7
        o["NodeChecks"] = std::move(checks);
    }
    if (!s.service_checks.empty()) {
        json::array checks;
        for (const auto& c : s.service_checks)
            checks.emplace_back(json::object{{"ID", c}});
        o["ServiceChecks"] = std::move(checks);
    }
    return json::serialize(o);
}

std::string_view txn_verb_name(txn_verb v) noexcept
{
    switch (v) {
    case txn_verb::set: return "set";
    case txn_verb::cas: return "cas";
    case txn_verb::lock: return "lock";
    case txn_verb::unlock: return "unlock";
    case txn_verb::get: return "get";
    case txn_verb::get_or_empty: return "get-or-empty";
    case txn_verb::get_tree: return "get-tree";
    case txn_verb::check_index: return "check-index";
    case txn_verb::check_session: return "check-session";
    case txn_verb::check_not_exists: return "check-not-exists";
    case txn_verb::delete_key: return "delete";
    case txn_verb::delete_tree: return "delete-tree";
    case txn_verb::delete_cas: return "delete-cas";
    }
    return "get";
}

std::string encode_txn(const std::vector<txn_op>& ops)
{
    json::array arr;
    arr.reserve(ops.size());
    for (const auto& op : ops) {
        json::object kv;
        kv["Verb"] = txn_verb_name(op.verb);
        kv["Key"] = op.key;
        if (!op.value.empty())
            kv["Value"] = colock::detail::base64_encode(op.value);
        const bool writes = op.verb == txn_verb::set || op.verb == txn_verb::cas || op.verb == txn_verb::lock ||
                            op.verb == txn_verb::unlock;
        if (writes || op.flags != 0)
            kv["Flags"] = op.flags; // always on writes: an omitted Flags is stored as 0
        if (op.index != 0 || op.verb == txn_verb::cas || op.verb == txn_verb::check_index ||
            op.verb == txn_verb::delete_cas)
            kv["Index"] = op.index;
        if (op.session)
            kv["Session"] = op.session->str();
        arr.emplace_back(json::object{{"KV", std::move(kv)}});
    }
    return json::serialize(arr);
}

std::optional<std::uint64_t> parse_uint64(std::string_view text) noexcept
{
    if (text.empty() || text.size() > 20)
        return std::nullopt;
    std::uint64_t n = 0;
    for (char c : text) {
        if (c < '0' || c > '9')
            return std::nullopt;
        const std::uint64_t d = static_cast<std::uint64_t>(c - '0');
        if (n > (UINT64_MAX - d) / 10)
            return std::nullopt;
        n = n * 10 + d;
    }
    return n;
}

} // namespace colock::consul::detail

namespace colock::consul {

txn_op txn_op::set(std::string key, std::string value, std::uint64_t flags)
{
    return {txn_verb::set, std::move(key), std::move(value), flags, 0, std::nullopt};
}
txn_op txn_op::cas(std::string key, std::string value, std::uint64_t index, std::uint64_t flags)
{
    return {txn_verb::cas, std::move(key), std::move(value), flags, index, std::nullopt};
}
txn_op txn_op::lock(std::string key, session_id s, std::string value, std::uint64_t flags)
{
    return {txn_verb::lock, std::move(key), std::move(value), flags, 0, std::move(s)};
}
txn_op txn_op::unlock(std::string key, session_id s, std::string value, std::uint64_t flags)
{
    return {txn_verb::unlock, std::move(key), std::move(value), flags, 0, std::move(s)};
}
txn_op txn_op::get(std::string key) { return {txn_verb::get, std::move(key), {}, 0, 0, std::nullopt}; }
txn_op txn_op::get_or_empty(std::string key) { return {txn_verb::get_or_empty, std::move(key), {}, 0, 0, std::nullopt}; }
txn_op txn_op::get_tree(std::string prefix) { return {txn_verb::get_tree, std::move(prefix), {}, 0, 0, std::nullopt}; }
txn_op txn_op::check_index(std::string key, std::uint64_t index)
{
    return {txn_verb::check_index, std::move(key), {}, 0, index, std::nullopt};
}
txn_op txn_op::check_session(std::string key, session_id s)
{
    return {txn_verb::check_session, std::move(key), {}, 0, 0, std::move(s)};
}
txn_op txn_op::check_not_exists(std::string key)
{
    return {txn_verb::check_not_exists, std::move(key), {}, 0, 0, std::nullopt};
}
txn_op txn_op::delete_key(std::string key) { return {txn_verb::delete_key, std::move(key), {}, 0, 0, std::nullopt}; }
txn_op txn_op::delete_tree(std::string prefix) { return {txn_verb::delete_tree, std::move(prefix), {}, 0, 0, std::nullopt}; }
txn_op txn_op::delete_cas(std::string key, std::uint64_t index)
{
    return {txn_verb::delete_cas, std::move(key), {}, 0, index, std::nullopt};
}

} // namespace colock::consul
