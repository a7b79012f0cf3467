#ifndef COLOCK_BENCH_HANDOFF_HPP
#define COLOCK_BENCH_HANDOFF_HPP

// Cross-process handoff: this process and a second one (the same binary, `--role handoff-peer`)
// take turns on one key. The holder waits until the other side is waiting (plus a settle delay, so
// its acquire has reached its blocking read), stamps CLOCK_MONOTONIC and releases; the other side
// stamps the moment its acquire completes. Latency = holds stamp - release stamp (one host, one
// clock). The stamps travel over a Unix socket pair, as lines: "W" (waiting), "H <ns>" (holds),
// "R <ns>" (releasing), "D" (done), "E <text>" (failed).
//
// The handoff floor (`--role handoff-floor-peer`) runs the same turns with no library: raw Beast,
// one keep-alive connection and one session (no checks, TTL 60 s, lock-delay 0) per process. The
// waiter reads the key (for X-Consul-Index), blocks on `?index=<idx>&wait=10s` until the key comes
// back free, then writes `?acquire`; the holder writes `?release`. That is what any Consul lock
// client pays for a handoff at least: the cycle floor's two writes plus the agent waking a blocking
// read, and both processes being scheduled, which colock's row pays too.

#include "stats.hpp"

#include <colock/consul/client.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <string>

namespace colock::bench {

struct handoff_settings {
    std::string key;
    std::string agent;                    // host:port, for the peer process (and the floor's connection)
    int handoffs = 200;                   // measured
    int warmup = 10;                      // unmeasured, first
    std::chrono::milliseconds settle{25}; // holder's pause after the other side said it waits
};

struct handoff_result {
    samples latency;      // both directions
    samples to_peer;      // this process released, the peer took it
    samples from_peer;    // the peer released, this process took it
    int non_positive = 0; // stamps out of order (would mean a broken clock or protocol)
    int warmup = 0;
    int runs = 0;         // peer processes (each run has its own warm-up)
};

// Adds the samples and counts of `from` to `into`.
void merge(handoff_result& into, const handoff_result& from);

// Runs the parent side with colock::lock: spawns the peer from `self_exe`, alternates, collects the stamps.
boost::asio::awaitable<handoff_result> run_handoff(consul::client& c, handoff_settings s, std::string self_exe);

// The same with raw Beast on both sides (the handoff floor).
boost::asio::awaitable<handoff_result> run_handoff_floor(handoff_settings s, std::string self_exe);

// The peers' mains: `--role handoff-peer|handoff-floor-peer --agent H:P --key K --handoffs N --settle-ms M --fd F`.
int handoff_peer_main(const std::string& agent, const std::string& key, int total_handoffs,
                      std::chrono::milliseconds settle, int fd);
int handoff_floor_peer_main(const std::string& agent, const std::string& key, int total_handoffs,
                            std::chrono::milliseconds settle, int fd);

} // namespace colock::bench

#endif
