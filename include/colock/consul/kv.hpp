#ifndef COLOCK_CONSUL_KV_HPP
#define COLOCK_CONSUL_KV_HPP

#include <colock/consul/query.hpp>
#include <colock/consul/session_id.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace colock::consul {

/// One key of Consul's KV store, decoded. Flags and indexes are full uint64 values.
struct kv_entry {
    std::string key;
    std::string value;                 ///< raw bytes (decoded from base64; empty when Consul sent null)
    std::uint64_t flags = 0;
    std::uint64_t create_index = 0;
    std::uint64_t modify_index = 0;    ///< Raft index of the last write; a lock's fencing token
    std::uint64_t lock_index = 0;      ///< number of times the key was acquired (restarts on re-creation)
    std::optional<session_id> session; ///< the holder; absent when the key is not locked

    friend bool operator==(const kv_entry&, const kv_entry&) = default;
};

/// Result of a single-key read: `entry` is empty when the key does not exist (HTTP 404).
struct kv_get_result {
    std::optional<kv_entry> entry;
    query_meta meta;
};

/// Result of a recursive read (`?recurse`): every key with the prefix, possibly none.
struct kv_list_result {
    std::vector<kv_entry> entries;
    query_meta meta;
};

/// Result of a key listing (`?keys`).
struct kv_keys_result {
    std::vector<std::string> keys;
    query_meta meta;
};

/// How a PUT treats the key. At most one of cas / acquire / release may be set.
/// (Not an aggregate on purpose: see query.hpp.)
struct kv_put_options {
    kv_put_options() noexcept {}
    explicit kv_put_options(std::uint64_t f) noexcept : flags(f) {}
    /// Write only if the key's ModifyIndex is `index` (0: only if the key does not exist).
    static kv_put_options with_cas(std::uint64_t index, std::uint64_t flags = 0)
    {
        kv_put_options o(flags);
        o.cas = index;
        return o;
    }
    /// Lock the key with session `s` (Consul's `?acquire=`).
    static kv_put_options with_acquire(session_id s, std::uint64_t flags = 0)
    {
        kv_put_options o(flags);
        o.acquire = std::move(s);
        return o;
    }
    /// Unlock the key held by session `s` (Consul's `?release=`).
    static kv_put_options with_release(session_id s, std::uint64_t flags = 0)
    {
        kv_put_options o(flags);
        o.release = std::move(s);
        return o;
    }

    std::uint64_t flags = 0;                ///< always sent; Consul stores 0 when omitted
    std::optional<std::uint64_t> cas;       ///< write only if ModifyIndex equals this (0: only if absent)
    std::optional<session_id> acquire;      ///< lock the key with this session
    std::optional<session_id> release;      ///< unlock the key held by this session
};

/// How a DELETE treats the key.
struct kv_delete_options {
    kv_delete_options() noexcept {}
    /// Delete only if the key's ModifyIndex is `index`.
    static kv_delete_options with_cas(std::uint64_t index)
    {
        kv_delete_options o;
        o.cas = index;
        return o;
    }
    /// Delete every key that starts with the given prefix.
    static kv_delete_options recursive()
    {
        kv_delete_options o;
        o.recurse = true;
        return o;
    }

    std::optional<std::uint64_t> cas;       ///< delete only if ModifyIndex equals this
    bool recurse = false;                   ///< delete every key with this prefix (not with cas)
};

} // namespace colock::consul

#endif
