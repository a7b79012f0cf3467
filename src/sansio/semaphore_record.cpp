#include "sansio/semaphore_record.hpp"
#include "sansio/txn_rollback.hpp"

#include <colock/semaphore_options.hpp>

#include <boost/json.hpp>

namespace colock::detail {

namespace json = boost::json;

error_code decode_semaphore_record(std::string_view value, std::uint32_t local_limit, semaphore_record& out)
{
    out = semaphore_record{};
    out.limit = local_limit;
    if (value.empty())
        return {};
    error_code ec;
    const auto doc = json::parse(value, ec);
    if (ec)
        return make_error_code(errc::bad_response);
    if (doc.is_null())
        return {};
    const auto* obj = doc.if_object();
    if (!obj)
        return make_error_code(errc::bad_response);
    if (const auto* limit = obj->if_contains("Limit")) {
        const auto n = limit->to_number<std::int64_t>(ec);
        if (ec || n < 0 || n > UINT32_MAX)
            return make_error_code(errc::bad_response);
        out.limit = static_cast<std::uint32_t>(n);
    } else {
        out.limit = 0; // Go decodes a missing Limit as 0, which conflicts with every valid limit
    }
    if (const auto* holders = obj->if_contains("Holders"); holders && !holders->is_null()) {
        const auto* map = holders->if_object();
        if (!map)
            return make_error_code(errc::bad_response);
        for (const auto& kv : *map) // Go counts every key, whatever its value
            out.holders.emplace(kv.key());
    }
    return {};
}

std::string encode_semaphore_record(const semaphore_record& r)
{
    json::object holders;
    for (const auto& h : r.holders)
        holders[h] = true;
    json::object o;
    o["Limit"] = r.limit;
    o["Holders"] = std::move(holders);
    return json::serialize(o);
}

semaphore_snapshot make_semaphore_snapshot(const std::vector<consul::kv_entry>& entries, std::string_view prefix)
{
    semaphore_snapshot snap;
    const std::string dir = std::string(prefix) + '/';
    const std::string record_key = dir + ".lock";
    for (const auto& e : entries) {
        if (e.key.compare(0, dir.size(), dir) != 0)
            continue; // a sibling prefix (`<prefix>2/...`) is not ours
        if (e.session)
            snap.live_sessions.insert(e.session->str());
        if (e.key == record_key)
            snap.record_entry = e;
    }
    return snap;
}

namespace {

// Reads the record of a snapshot: flags, JSON, limit.
error_code read_record(const semaphore_snapshot& snap, std::uint32_t limit, semaphore_record& rec)
{
    if (snap.record_entry && snap.record_entry->flags != semaphore_flags)
        return make_error_code(errc::conflict);
    if (auto ec = decode_semaphore_record(snap.record_entry ? std::string_view(snap.record_entry->value) : "", limit, rec))
        return ec;
    if (rec.limit != limit)
        return make_error_code(errc::limit_conflict);
    return {};
}

} // namespace

semaphore_decision decide_semaphore_acquire(const semaphore_snapshot& snap, std::uint32_t limit, std::string_view sid)
{
    semaphore_decision d;
    semaphore_record rec;
    if (auto ec = read_record(snap, limit, rec)) {
        d.what = semaphore_decision::kind::failed;
        d.record_limit = rec.limit;
        d.error = ec;
        return d;
    }
    if (rec.holders.count(std::string(sid))) {
        d.what = semaphore_decision::kind::already_holder;
        d.cas_index = snap.record_entry ? snap.record_entry->modify_index : 0;
        return d;
    }
    std::erase_if(rec.holders, [&](const std::string& h) { return !snap.live_sessions.count(h); });
    d.live_holders = rec.holders.size();
    if (rec.holders.size() >= limit) {
        d.what = semaphore_decision::kind::wait;
        return d;
    }
    rec.holders.emplace(sid);
    d.what = semaphore_decision::kind::take;
    d.cas_index = snap.record_entry ? snap.record_entry->modify_index : 0;
    d.record = encode_semaphore_record(rec);
    return d;
}

std::optional<semaphore_decision> decide_from_own_write(const consul::kv_entry& record_entry, std::uint32_t limit,
                                                        std::string_view sid)
{
    semaphore_snapshot snap;
    snap.record_entry = record_entry;
    semaphore_record rec;
    const std::string id(sid);
    if (read_record(snap, limit, rec) || rec.holders.count(id) || rec.holders.size() >= limit)
        return std::nullopt; // unreadable, odd, or full as far as we know: look at the whole prefix
    rec.holders.insert(id);
    semaphore_decision d;
    d.what = semaphore_decision::kind::take;
    d.cas_index = record_entry.modify_index;
    d.live_holders = rec.holders.size() - 1;
    d.record = encode_semaphore_record(rec);
    return d;
}

semaphore_hold check_semaphore_hold(const semaphore_snapshot& snap, std::uint32_t limit, std::string_view sid)
{
    semaphore_record rec;
    if (read_record(snap, limit, rec))
        return semaphore_hold::unreadable;
    const std::string id(sid);
    return rec.holders.count(id) && snap.live_sessions.count(id) ? semaphore_hold::held : semaphore_hold::lost;
}

std::optional<semaphore_removal> semaphore_record_without(const std::optional<consul::kv_entry>& record_entry,
                                                          std::uint32_t limit, std::string_view sid)
{
    if (!record_entry || record_entry->flags != semaphore_flags)
        return std::nullopt;
    semaphore_record rec;
    if (decode_semaphore_record(record_entry->value, limit, rec) || !rec.holders.erase(std::string(sid)))
        return std::nullopt;
    semaphore_removal r;
    r.cas_index = record_entry->modify_index;
    r.record = encode_semaphore_record(rec);
    return r;
}

error_code semaphore_rollback_error(const consul::txn_result& r)
{
    if (r.errors.empty())
        return make_error_code(errc::bad_response);
    switch (classify_rollback(r.errors.front().what)) {
    case rollback_cause::stale_index: return {};
    case rollback_cause::permission_denied: return make_http_error(403);
    default: return make_error_code(errc::conflict);
    }
}

} // namespace colock::detail
