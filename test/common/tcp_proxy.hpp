#ifndef COLOCK_TEST_COMMON_TCP_PROXY_HPP
#define COLOCK_TEST_COMMON_TCP_PROXY_HPP

// A TCP proxy between the client under test and a real agent, on its own thread, that can stop
// passing bytes without closing anything (a silent network partition: packets dropped, no RST) or
// reset every connection. Listens on 127.0.0.1 with an ephemeral port.

#include <cstdint>
#include <memory>
#include <string>

namespace colock::test {

class tcp_proxy {
public:
    enum class mode {
        pass,      ///< forward bytes both ways
        blackhole, ///< accept and read, but forward nothing in either direction (no FIN, no RST)
    };

    tcp_proxy(std::string target_host, std::uint16_t target_port);
    ~tcp_proxy();
    tcp_proxy(const tcp_proxy&) = delete;
    tcp_proxy& operator=(const tcp_proxy&) = delete;

    std::uint16_t port() const noexcept;
    void set_mode(mode m);
    /// Closes every open connection with a reset (SO_LINGER 0).
    void reset_all();
    std::size_t connections_accepted() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace colock::test

#endif
