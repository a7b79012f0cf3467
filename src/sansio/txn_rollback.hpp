#ifndef COLOCK_SRC_SANSIO_TXN_ROLLBACK_HPP
#define COLOCK_SRC_SANSIO_TXN_ROLLBACK_HPP

// Reading why Consul rolled a /v1/txn back.

#include <string>

namespace colock::detail {

// The failing operation's text without what is quoted in it. Consul's texts quote the key (`failed
// to lock key "k" due to lock delay`): a key named "lock delay" or "index is stale" must never be
// taken for the reason.
std::string rollback_reason(const std::string& what);

} // namespace colock::detail

#endif
