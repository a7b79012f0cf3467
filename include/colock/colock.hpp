#ifndef COLOCK_COLOCK_HPP
#define COLOCK_COLOCK_HPP

// Umbrella header: everything a user of colock needs.
#include <colock/consul/client.hpp>
#include <colock/consul/config.hpp>
#include <colock/consul/index_tracker.hpp>
#include <colock/consul/kv.hpp>
#include <colock/consul/kv_watch.hpp>
#include <colock/consul/query.hpp>
#include <colock/consul/session.hpp>
#include <colock/consul/session_id.hpp>
#include <colock/consul/session_options.hpp>
#include <colock/consul/txn.hpp>
#include <colock/diagnostics.hpp>
#include <colock/election.hpp>
#include <colock/election_options.hpp>
#include <colock/error.hpp>
#include <colock/lock.hpp>
#include <colock/lock_options.hpp>
#include <colock/logger.hpp>
#include <colock/semaphore.hpp>
#include <colock/semaphore_options.hpp>

#endif
