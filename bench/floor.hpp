#ifndef COLOCK_BENCH_FLOOR_HPP
#define COLOCK_BENCH_FLOOR_HPP

// The protocol floor: what an acquire+release cycle costs with no library at all. Raw Beast over one
// keep-alive connection, a session created once (no checks), then per cycle
//     PUT /v1/kv/<key>?acquire=<sid>&flags=<lock flags>   ->  true
//     PUT /v1/kv/<key>?release=<sid>&flags=<lock flags>   ->  true
// (the two Raft writes any Consul lock pays). No deadlines, no retries, no parsing beyond the status
// and the body; any other answer ends the benchmark.
//
// The same two writes can go through /v1/txn (a `lock` and an `unlock` operation, each alone, 200
// expected), which is what colock::lock sends for its fencing token: that variant shows how much of
// colock's distance to the floor is the endpoint's, on the agent, rather than the client's.

#include "stats.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace colock::bench {

enum class floor_endpoint { kv, txn };

class protocol_floor {
public:
    protocol_floor(boost::asio::any_io_executor ex, std::string host, std::uint16_t port, std::string key,
                   floor_endpoint endpoint = floor_endpoint::kv);
    ~protocol_floor();

    // Connects and creates the session (TTL 60 s, no checks, lock-delay 0).
    boost::asio::awaitable<void> open();
    // Renews the session (not timed), then runs `cycles` timed acquire+release cycles into `out`.
    boost::asio::awaitable<void> run(std::size_t cycles, samples& out);
    // Destroys the session and deletes the key.
    boost::asio::awaitable<void> close();

    const std::string& session_id() const noexcept;

private:
    struct state;
    std::unique_ptr<state> s_;
};

} // namespace colock::bench

#endif
