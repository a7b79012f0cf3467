#ifndef COLOCK_TEST_COMMON_TCP_PROXY_HPP
#define COLOCK_TEST_COMMON_TCP_PROXY_HPP

// A TCP proxy between the client under test and a real agent, on its own thread, that can stop
// passing bytes without closing anything (a silent network partition: packets dropped, no RST),
// hold back or swallow the agent's replies while requests still reach it (a slow or lossy path:
// writes are applied, their answers come late or never), or reset every connection. Listens on
// 127.0.0.1 with an ephemeral port.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace colock::test {

class tcp_proxy {
public:
    enum class mode {
        pass,          ///< forward bytes both ways
        blackhole,     ///< accept and read, but forward nothing in either direction (no FIN, no RST)
        delay_replies, ///< forward requests at once; hold each chunk of a reply for reply_delay(), then forward it
        drop_replies,  ///< forward requests; read the agent's replies and discard them, keeping the connection open
    };

    tcp_proxy(std::string target_host, std::uint16_t target_port);
    ~tcp_proxy();
    tcp_proxy(const tcp_proxy&) = delete;
    tcp_proxy& operator=(const tcp_proxy&) = delete;

    std::uint16_t port() const noexcept;
    /// Applies to bytes read from now on (a reply chunk already being delayed is still forwarded).
    void set_mode(mode m);
    mode current_mode() const noexcept;
    /// How long mode::delay_replies holds each reply chunk (default 300 ms).
    void set_reply_delay(std::chrono::milliseconds d);
    /// Closes every open connection with a reset (SO_LINGER 0).
    void reset_all();
    std::size_t connections_accepted() const;
    /// How many chunks forwarded to the agent so far start with `start` (e.g. "PUT /v1/txn") and contain
    /// `containing` (e.g. a txn verb; a small request travels in one chunk): shows that a request has
    /// left the proxy, i.e. reached the agent.
    std::size_t requests_forwarded(std::string_view start, std::string_view containing = {}) const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace colock::test

#endif
