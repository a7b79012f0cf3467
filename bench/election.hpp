#ifndef COLOCK_BENCH_ELECTION_HPP
#define COLOCK_BENCH_ELECTION_HPP

// Election failover: two candidates (two clients, each with its own session: no checks, lock-delay 0) take turns.
// Each round the waiting candidate campaigns (and is given `settle` to reach its blocking query), then the leader
// either resigns or "dies" (an operator destroys its session through a third client); the time from just before that
// request is sent until the waiter's campaign() completes is one sample.

#include "stats.hpp"

#include <colock/consul/config.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <string>

namespace colock::bench {

struct election_settings {
    std::string key;
    int rounds = 20;                      // per way of ending a term
    std::chrono::milliseconds settle{25}; // the waiter's head start before the leader goes
};

struct election_result {
    samples after_resign;  // leader resigns -> the other candidate leads
    samples after_destroy; // leader's session destroyed -> the other candidate leads
};

boost::asio::awaitable<election_result> run_election_failover(consul::client_options options, election_settings s);

} // namespace colock::bench

#endif
