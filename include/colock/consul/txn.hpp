#ifndef COLOCK_CONSUL_TXN_HPP
#define COLOCK_CONSUL_TXN_HPP

#include <colock/consul/kv.hpp>
#include <colock/consul/query.hpp>
#include <colock/consul/session_id.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace colock::consul {

/// The KV verbs of Consul's /v1/txn endpoint.
enum class txn_verb {
    set, cas, lock, unlock, get, get_or_empty, get_tree,
    check_index, check_session, check_not_exists, delete_key, delete_tree, delete_cas,
};

/// One KV operation of a transaction. Build them with the named factories.
struct txn_op {
    txn_verb verb = txn_verb::get;
    std::string key;
    std::string value;                 ///< raw bytes (base64-encoded on the wire)
    std::uint64_t flags = 0;
    std::uint64_t index = 0;           ///< for cas, check_index, delete_cas
    std::optional<session_id> session; ///< for lock, unlock, check_session

    static txn_op set(std::string key, std::string value, std::uint64_t flags = 0);
    static txn_op cas(std::string key, std::string value, std::uint64_t index, std::uint64_t flags = 0);
    static txn_op lock(std::string key, session_id s, std::string value, std::uint64_t flags = 0);
    static txn_op unlock(std::string key, session_id s, std::string value, std::uint64_t flags = 0);
    static txn_op get(std::string key);
    static txn_op get_or_empty(std::string key);
    static txn_op get_tree(std::string prefix);
    static txn_op check_index(std::string key, std::uint64_t index);
    static txn_op check_session(std::string key, session_id s);
    static txn_op check_not_exists(std::string key);
    static txn_op delete_key(std::string key);
    static txn_op delete_tree(std::string prefix);
    static txn_op delete_cas(std::string key, std::uint64_t index);

    friend bool operator==(const txn_op&, const txn_op&) = default;
};

/// Consul accepts at most this many operations in one transaction.
inline constexpr std::size_t max_txn_operations = 64;

/// Why one operation made Consul roll the transaction back.
struct txn_error {
    std::size_t op_index = 0;
    std::string what; ///< Consul's text (untrusted)
};

/// Outcome of a transaction. A rollback (HTTP 409) is not an error of the call: `committed` is false
/// and `errors` says which operation failed and why.
struct txn_result {
    bool committed = false;
    std::vector<kv_entry> results; ///< one entry per operation that returns one, in order
    std::vector<txn_error> errors;
    query_meta meta;               ///< filled for read-only transactions
};

} // namespace colock::consul

#endif
