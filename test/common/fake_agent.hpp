// The scripted fake Consul agent: an in-process HTTP/1.1 server on 127.0.0.1 (ephemeral port) that answers each
// request with the next step of a script, for fault-injection tests of the client's HTTP layer (TESTING.md, "HTTP/JSON
// bad input"; STYLE.md 4.7). It depends on Boost.Asio/Beast and the standard library only, never on colock.
//
// It runs on its own thread with its own io_context, so the client under test can run on the test's io_context.
// Every public member is thread-safe.
#ifndef COLOCK_TEST_COMMON_FAKE_AGENT_HPP
#define COLOCK_TEST_COMMON_FAKE_AGENT_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace colock::test {

// One request as the fake agent parsed it (with Beast's request parser).
struct recorded_request {
    std::string method;
    std::string target;
    std::map<std::string, std::string> headers;  // lower-case names; repeated fields joined with ", "
    std::string body;
    std::size_t connection = 0;  // 1-based id of the TCP connection it came on (order of accept)
    std::size_t step = 0;        // 1-based position of the script step it consumed (counted over all push()
                                 // calls); 0 when answered by the default step or the "script exhausted" reply
};

// What the fake agent does with one request. An aggregate: set the fields, or use the shorthands below, e.g.
//   agent.push(fake_step::reset(fake_agent::consul_reply("[]"), 20));
struct fake_step {
    enum class action {
        respond,             // wait `delay`, send `response`, keep the connection open for the next request unless
                             // `close_after` (or the request asked for Connection: close / was HTTP/1.0 w/o keep-alive)
        close_before_reply,  // read the request, wait `delay`, then close without answering (graceful FIN)
        reset,               // read the request, wait `delay`, send the first `bytes_before_fault` bytes of `response`,
                             // then RST (SO_LINGER 0 + close). The server waits (<= 200 ms) until those bytes are
                             // acknowledged by the peer's kernel before the RST, so the client can read them first.
        never_reply,         // read the request and keep the connection open, never answering (until the server
                             // stops); later bytes from the client are read and discarded
        trickle,             // wait `delay`, send `response` one byte every `interval` (first byte at once), then
                             // like respond: keep the connection open unless `close_after`
        blackhole,           // do not even read: leave the request unread, never answer, hold the socket until the
                             // server stops. Records nothing (requests() does not grow), but consumes the step.
    };
    action what = action::respond;
    std::string response;                   // raw bytes: status line, headers, body — may be malformed on purpose
    std::chrono::milliseconds delay{0};     // before sending anything (respond, close_before_reply, reset, trickle)
    std::chrono::milliseconds interval{0};  // for trickle
    std::size_t bytes_before_fault = 0;     // for reset (clamped to response.size())
    bool close_after = false;               // for respond and trickle: close (FIN) after sending

    // Shorthands (GCC 12 warns under -Wextra about members left out of designated initializers).
    static fake_step respond(std::string response, std::chrono::milliseconds delay = {}) {
        fake_step s;
        s.response = std::move(response);
        s.delay = delay;
        return s;
    }
    static fake_step respond_and_close(std::string response, std::chrono::milliseconds delay = {}) {
        fake_step s = respond(std::move(response), delay);
        s.close_after = true;
        return s;
    }
    static fake_step close_before_reply(std::chrono::milliseconds delay = {}) {
        fake_step s;
        s.what = action::close_before_reply;
        s.delay = delay;
        return s;
    }
    static fake_step reset(std::string response = {}, std::size_t bytes_before_fault = 0,
                           std::chrono::milliseconds delay = {}) {
        fake_step s;
        s.what = action::reset;
        s.response = std::move(response);
        s.bytes_before_fault = bytes_before_fault;
        s.delay = delay;
        return s;
    }
    static fake_step never_reply() {
        fake_step s;
        s.what = action::never_reply;
        return s;
    }
    static fake_step trickle(std::string response, std::chrono::milliseconds interval,
                             std::chrono::milliseconds delay = {}) {
        fake_step s;
        s.what = action::trickle;
        s.response = std::move(response);
        s.interval = interval;
        s.delay = delay;
        return s;
    }
    static fake_step blackhole() {
        fake_step s;
        s.what = action::blackhole;
        return s;
    }
};

// The server. Steps are consumed in the order in which complete requests arrive (across all connections); a
// blackhole step is consumed, without reading, by the first connection on which bytes of a new request arrive while
// it is at the front of the script. If another connection consumed the step in front of it meanwhile, a request
// already read that lands on a blackhole step is recorded and then treated like never_reply.
class fake_agent {
public:
    fake_agent();  // starts listening on 127.0.0.1 with an ephemeral port, and serving
    explicit fake_agent(const std::string& address); // the same on another loopback address, e.g. "::1"
    ~fake_agent(); // stops the thread, closes every socket; returns within about a second whatever the connections do
    fake_agent(const fake_agent&) = delete;
    fake_agent& operator=(const fake_agent&) = delete;

    std::uint16_t port() const noexcept;

    // Script: each request consumes the next step in order. When the script is exhausted the reply is a 500 with
    // body "fake agent: script exhausted" (so a test sees unexpected extra requests).
    void push(fake_step step);
    // A route-less default: when set, used instead of "script exhausted" for every request after the script ends.
    void set_default(fake_step step);

    // Builds well-formed response bytes: status line with the standard reason phrase, the given headers in order,
    // Content-Length (unless `headers` already has Content-Length or Transfer-Encoding, so a test can lie on
    // purpose), and "Connection: close" if keep_alive is false (unless `headers` already has a Connection field).
    // Note: keep_alive = false only writes the header; the step's close_after decides whether the server closes.
    static std::string reply(unsigned status, std::string_view body,
                             std::vector<std::pair<std::string, std::string>> headers = {}, bool keep_alive = true);
    // A 200 JSON reply with X-Consul-Index, X-Consul-KnownLeader: true, X-Consul-LastContact: 0, Content-Type
    // application/json.
    static std::string consul_reply(std::string_view json_body, std::uint64_t index = 1);
    // An error reply the way Consul sends them: the status and a text/plain body such as "No cluster leader".
    static std::string consul_error(unsigned status, std::string_view text);

    std::vector<recorded_request> requests() const;  // snapshot, in arrival order (complete requests)
    std::size_t connections_accepted() const;
    std::size_t steps_left() const;
    // Blocks until at least n requests have been recorded or the timeout passes; returns whether they were.
    bool wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace colock::test

#endif  // COLOCK_TEST_COMMON_FAKE_AGENT_HPP
