#ifndef COLOCK_BENCH_HANDOFF_HPP
#define COLOCK_BENCH_HANDOFF_HPP

// Cross-process handoff: this process and a second one (the same binary, `--role handoff-peer`)
// take turns on one key. The holder waits until the other side is waiting (plus a settle delay, so
// its acquire has reached its blocking read), stamps CLOCK_MONOTONIC and releases; the other side
// stamps the moment its acquire completes. Latency = holds stamp - release stamp (one host, one
// clock). The stamps travel over a Unix socket pair, as lines: "W" (waiting), "H <ns>" (holds),
// "R <ns>" (releasing), "D" (done), "E <text>" (failed).

#include "stats.hpp"

#include <colock/consul/client.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <string>

namespace colock::bench {

struct handoff_settings {
    std::string key;
    std::string agent;                    // host:port, for the peer process
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
};

// Runs the parent side: spawns the peer from `self_exe`, alternates, collects the stamps.
boost::asio::awaitable<handoff_result> run_handoff(consul::client& c, handoff_settings s, std::string self_exe);

// The peer's main: `--role handoff-peer --agent H:P --key K --handoffs N --settle-ms M --fd F`.
int handoff_peer_main(const std::string& agent, const std::string& key, int total_handoffs,
                      std::chrono::milliseconds settle, int fd);

} // namespace colock::bench

#endif
