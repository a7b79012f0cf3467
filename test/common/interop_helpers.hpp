#ifndef COLOCK_TEST_COMMON_INTEROP_HELPERS_HPP
#define COLOCK_TEST_COMMON_INTEROP_HELPERS_HPP

// Scaffolding of the interoperability tests (test/integration/interop_*.cpp): Go peers on a lock or a semaphore,
// the colock side of a contention run, and checks over what the peers did. Only for test files built with
// COLOCK_INTEROP_PEER (test/CMakeLists.txt defines it for integration/interop_*.cpp).

#include "async_test.hpp"
#include "consul_agent.hpp"
#include "exclusion_checker.hpp"
#include "fault_helpers.hpp"
#include "go_peer.hpp"
#include "history_file.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <vector>

#ifndef COLOCK_INTEROP_PEER
#error "interop_helpers.hpp needs COLOCK_INTEROP_PEER (the Go peer's path; see test/CMakeLists.txt)"
#endif

namespace colock::test {

/// Global fixture (declare it before consul_agent_fixture): the Go peer must be there (else SKIP or, in CI, fail).
struct go_peer_fixture {
    void setup() { require_go_peer(COLOCK_INTEROP_PEER); }
};

/// How long a contender holds and pauses between rounds (uniformly random within these bounds).
struct round_timing {
    std::chrono::milliseconds hold_min{2};
    std::chrono::milliseconds hold_max{8};
    std::chrono::milliseconds think_min{0};
    std::chrono::milliseconds think_max{10};
};

inline std::string ms_flag(std::chrono::milliseconds d) { return std::to_string(d.count()) + "ms"; }

/// The history file all contenders of a test append to.
inline std::string history_path(const scratch_dir& dir) { return dir.file("history.jsonl"); }

/// A Go peer (its output in `dir/<who>.out`) doing `rounds` rounds with `timing` in `mode_args` (-mode and what it
/// needs), with sessions of TTL `ttl`, plus `extra` flags.
inline std::unique_ptr<go_peer> start_go_peer(const scratch_dir& dir, std::vector<std::string> mode_args,
                                              const std::string& who, int rounds, round_timing timing,
                                              const std::string& ttl = "10s", std::vector<std::string> extra = {})
{
    std::vector<std::string> args{"-addr",      consul_agent::instance().http_address(),
                                  "-who",       who,
                                  "-rounds",    std::to_string(rounds),
                                  "-history",   history_path(dir),
                                  "-ttl",       ttl,
                                  "-hold-min",  ms_flag(timing.hold_min),
                                  "-hold-max",  ms_flag(timing.hold_max),
                                  "-think-min", ms_flag(timing.think_min),
                                  "-think-max", ms_flag(timing.think_max)};
    args.insert(args.end(), mode_args.begin(), mode_args.end());
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<go_peer>(COLOCK_INTEROP_PEER, std::move(args), dir.file(who + ".out"));
}

/// A Go api.Lock peer on `key` (sessions with lock-delay 1 ms).
inline std::unique_ptr<go_peer> start_go_lock(const scratch_dir& dir, const std::string& key, const std::string& who,
                                              int rounds, round_timing timing, std::vector<std::string> extra = {})
{
    return start_go_peer(dir, {"-mode", "lock", "-key", key, "-lock-delay", "1ms"}, who, rounds, timing, "10s",
                         std::move(extra));
}

/// A Go api.Semaphore peer on `prefix` with `limit` slots.
inline std::unique_ptr<go_peer> start_go_semaphore(const scratch_dir& dir, const std::string& prefix, unsigned limit,
                                                   const std::string& who, int rounds, round_timing timing,
                                                   const std::string& ttl = "10s", std::vector<std::string> extra = {})
{
    return start_go_peer(dir, {"-mode", "semaphore", "-prefix", prefix, "-limit", std::to_string(limit)}, who,
                         rounds, timing, ttl, std::move(extra));
}

/// The peer printed "holding" (it is inside its -until-signal critical section).
inline bool go_peer_holds(go_peer& p) { return p.output().find("holding") != std::string::npos; }

inline std::chrono::milliseconds random_ms(std::mt19937& rng, std::chrono::milliseconds lo,
                                           std::chrono::milliseconds hi)
{
    std::uniform_int_distribution<long long> d(lo.count(), hi.count());
    return std::chrono::milliseconds(d(rng));
}

/// What the colock side of a contention run saw.
struct contender_stats {
    std::vector<std::string> errors;
    long long wait_max_ms = 0; ///< the longest acquire
};

/// The colock side of a contention run on a colock::lock or colock::semaphore: `rounds` rounds of acquire, enter
/// (with the fencing token), hold, exit, release, think. With `use_it` false it skips acquire and release and writes
/// the same lines: a broken lock, for positive controls.
template <class Recipe>
boost::asio::awaitable<void> colock_contender(Recipe& r, history_file& h, std::string who, int rounds,
                                              round_timing timing, bool use_it, unsigned seed, contender_stats& stats)
{
    std::mt19937 rng(seed);
    for (int i = 0; i < rounds; ++i) {
        if (use_it) {
            const auto t0 = clock_type::now();
            auto [ec] = co_await r.acquire(tuple_awaitable);
            if (ec) {
                stats.errors.push_back(who + " acquire: " + ec.message());
                co_return;
            }
            stats.wait_max_ms = std::max(stats.wait_max_ms, ms_since(t0));
        }
        h.enter(who, use_it ? r.fencing_token() : 0);
        co_await sleep_for(random_ms(rng, timing.hold_min, timing.hold_max));
        if (use_it && !r.is_held())
            stats.errors.push_back(who + " lost its hold inside the critical section");
        h.exit(who); // before the release is sent: the hold lasts until Consul has it back
        if (use_it) {
            auto [ec] = co_await r.release(tuple_awaitable);
            if (ec) {
                stats.errors.push_back(who + " release: " + ec.message());
                co_return;
            }
        }
        co_await sleep_for(random_ms(rng, timing.think_min, timing.think_max));
    }
}

/// Every peer ends within `limit` with exit code 0 (a failure shows its output); logs their summaries.
inline boost::asio::awaitable<void> expect_peers_succeeded(std::vector<std::unique_ptr<go_peer>>& peers,
                                                           std::chrono::milliseconds limit)
{
    for (auto& p : peers) {
        const bool ended = co_await wait_for_exit(*p, limit);
        BOOST_TEST_REQUIRE(ended, "the Go peer did not finish: " << p->output());
        BOOST_TEST(p->exit_code().value_or(-1) == 0,
                   "Go peer exit code " << p->exit_code().value_or(-1) << ": " << p->output());
        BOOST_TEST_MESSAGE("go peer: " << p->output());
    }
}

/// Logs the first `max` violations of a history.
inline void log_violations(const exclusion_report& r, std::size_t max = 10)
{
    for (std::size_t i = 0; i < r.violations.size() && i < max; ++i)
        BOOST_TEST_MESSAGE("violation: " << r.violations[i]);
}

/// Some violation mentions `what`.
inline bool has_violation(const exclusion_report& r, const std::string& what)
{
    return std::any_of(r.violations.begin(), r.violations.end(),
                       [&](const std::string& v) { return v.find(what) != std::string::npos; });
}

} // namespace colock::test

#endif
