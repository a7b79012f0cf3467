// classify_rollback(): why Consul rolled a /v1/txn back, from the texts Consul 1.14 writes (agent/consul/state
// txn.go and kvs.go, the txn endpoint's lock-delay check, the ACL layer). Keys are quoted in those texts, so a key
// that spells a reason never decides it.

#include "sansio/txn_rollback.hpp"

#include <boost/test/unit_test.hpp>

using colock::detail::classify_rollback;
using colock::detail::rollback_cause;

BOOST_AUTO_TEST_SUITE(txn_rollback_classification)

BOOST_AUTO_TEST_CASE(each_consul_text_has_its_cause)
{
    BOOST_TEST((classify_rollback(R"(failed to lock key "k" due to lock delay)") == rollback_cause::lock_delay));
    BOOST_TEST((classify_rollback(R"(failed to lock key "k", lock is already held)") == rollback_cause::already_held));
    BOOST_TEST((classify_rollback(R"(invalid session "5e1c7a0e-0000-4000-8000-000000000000")") ==
                rollback_cause::invalid_session));
    BOOST_TEST((classify_rollback("failed session lookup: boom") == rollback_cause::invalid_session));
    BOOST_TEST((classify_rollback(R"(failed to set key "k", index is stale)") == rollback_cause::stale_index));
    BOOST_TEST((classify_rollback(R"(failed to delete key "k", index is stale)") == rollback_cause::stale_index));
    BOOST_TEST((classify_rollback(R"(failed index check for key "k", current modify index 7 != 5)") ==
                rollback_cause::guard_failed));
    BOOST_TEST((classify_rollback(R"(failed session check for key "k", current session "a" != "b")") ==
                rollback_cause::guard_failed));
    BOOST_TEST((classify_rollback(R"(key "k" exists)") == rollback_cause::guard_failed));
    BOOST_TEST((classify_rollback(R"(key "k" doesn't exist)") == rollback_cause::missing_key));
    BOOST_TEST((classify_rollback("Permission denied") == rollback_cause::permission_denied));
    BOOST_TEST((classify_rollback(R"(Permission denied: token with AccessorID 'x' lacks permission 'key:write' on "k")") ==
                rollback_cause::permission_denied));
    BOOST_TEST((classify_rollback("something new in a later Consul") == rollback_cause::other));
}

BOOST_AUTO_TEST_CASE(a_guard_on_a_missing_key_is_a_guard_not_a_missing_get)
{
    BOOST_TEST((classify_rollback(R"(failed to check index, key "k" doesn't exist)") == rollback_cause::guard_failed));
    BOOST_TEST((classify_rollback(R"(failed to check session, key "k" doesn't exist)") == rollback_cause::guard_failed));
}

BOOST_AUTO_TEST_CASE(a_key_that_spells_a_reason_never_decides_it)
{
    BOOST_TEST((classify_rollback(R"(failed to lock key "due to lock delay", lock is already held)") ==
                rollback_cause::already_held));
    BOOST_TEST((classify_rollback(R"(failed to set key "lock is already held", index is stale)") ==
                rollback_cause::stale_index));
    BOOST_TEST((classify_rollback(R"(key "Permission denied" doesn't exist)") == rollback_cause::missing_key));
    BOOST_TEST((classify_rollback(R"(key "session \"x\" exists" doesn't exist)") == rollback_cause::missing_key));
}

BOOST_AUTO_TEST_SUITE_END()
