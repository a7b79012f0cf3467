#ifndef COLOCK_TEST_COMMON_CONSUL_AGENT_HPP
#define COLOCK_TEST_COMMON_CONSUL_AGENT_HPP

// The real-agent harness of Tier B (TESTING.md 4.1, CONSUL.md section 8): one `consul agent -dev` per test
// process on free loopback ports, started on first use, stopped at exit. Independent of the colock library:
// it talks to the agent with synchronous Beast/JSON code, so a broken library cannot break the harness.
//
// Binary: $COLOCK_CONSUL if set, else the path printed by scripts/consul (COLOCK_CONSUL_SCRIPT). Without a
// binary the process prints `SKIP: <reason>` and exits with 77 (a CTest skip); with $CI set it fails instead.
// With $CONSUL_HTTP_ADDR set (host:port or http://host:port) an existing agent is used and nothing is started.
//
// Usage in a test file:
//     using colock::test::consul_agent_fixture; // the macro needs an unqualified name
//     BOOST_TEST_GLOBAL_FIXTURE(consul_agent_fixture);
//     auto& agent = colock::test::consul_agent::instance();
//     auto prefix = agent.unique_prefix("my_case");

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace colock::test {

struct http_reply {
    unsigned status = 0;
    std::string body;
    std::map<std::string, std::string> headers; // names lower-case; repeated fields joined with ", "

    // The header's value, or "" when absent (name in lower case).
    std::string header(const std::string& lower_case_name) const;
};

// Certificate files for an agent that also serves HTTPS (see consul_agent::enable_https).
struct tls_files {
    std::string ca_file, cert_file, key_file;
};

class consul_agent {
public:
    // Before the first instance(): the agent also serves HTTPS on https_port() with these files
    // (client certificates are not required). Throws std::logic_error once the agent has started.
    static void enable_https(tls_files files);
    std::uint16_t https_port() const noexcept; // 0 unless enable_https() was called
    // The process-wide agent, started on first use (thread-safe) and stopped at process exit. A start failure
    // is remembered: later calls throw the same error instead of trying again. Never returns when the binary
    // cannot be had outside CI (prints `SKIP: <reason>`, exits 77).
    static consul_agent& instance();

    consul_agent(const consul_agent&) = delete;
    consul_agent& operator=(const consul_agent&) = delete;
    ~consul_agent(); // stop()

    const std::string& host() const noexcept;   // "127.0.0.1" (or the host of CONSUL_HTTP_ADDR)
    std::uint16_t http_port() const noexcept;
    std::string http_address() const;           // "host:port"
    const std::string& version() const noexcept; // "Consul v1.14.11" (for an existing agent: from /v1/agent/self)

    // True when this process started the agent (false with CONSUL_HTTP_ADDR).
    bool started_by_harness() const noexcept;
    pid_t pid() const noexcept;                  // the agent's pid; 0 when not started by the harness
    const std::string& node_name() const noexcept;
    const std::string& binary_path() const noexcept; // "" for an existing agent
    const std::string& temp_dir() const noexcept;    // "" for an existing agent
    std::string log_path() const;                    // the agent's stdout+stderr; "" for an existing agent
    std::string log_tail(std::size_t max_lines = 40) const;

    // A key prefix no other test uses: "colock-test/<pid>-<counter>/<name>/" (ends with '/'). Characters of
    // `name` outside [A-Za-z0-9._-] become '_'.
    std::string unique_prefix(std::string_view name);

    // Blocking HTTP/1.1 request on a fresh connection with a 10 s deadline (connect to end of body). `target`
    // is sent as given (e.g. "/v1/kv/a/b?recurse"), so it must be URL-encoded already. Content-Length is set
    // for any body. Any HTTP status is returned; throws std::runtime_error on transport failure or timeout.
    http_reply request(std::string_view method, std::string_view target, std::string_view body = {},
                       std::map<std::string, std::string> headers = {});
    http_reply request(std::string_view method, std::string_view target, std::string_view body,
                       std::map<std::string, std::string> headers, std::chrono::milliseconds timeout);

    // Keys under a prefix, recursively (GET /v1/kv/<prefix>?keys), sorted; empty if none.
    std::vector<std::string> keys_under(std::string_view prefix);
    // IDs of the sessions (GET /v1/session/list) whose Name starts with name_prefix.
    std::vector<std::string> sessions_named(std::string_view name_prefix);

    // SIGINT, up to 10 s for the agent to exit, then SIGKILL; removes the temp dir. Idempotent; a no-op for
    // an existing agent. Afterwards requests fail (the agent is not restarted).
    void stop();
    bool stopped() const noexcept;

    // Removes temp dirs of earlier harness runs whose owning test process no longer exists (left behind by a
    // SIGKILLed test: its agent died with it through PR_SET_PDEATHSIG). Called before each start; returns how
    // many it removed.
    static std::size_t remove_stale_temp_dirs();
    // The folder temp dirs are created in ($TMPDIR or /tmp) and their name prefix.
    static std::string temp_root();
    static constexpr std::string_view temp_dir_prefix = "colock-consul-";

private:
    consul_agent() = default;
    void start();
    void start_external(const std::string& addr);
    void launch_once(); // one attempt: ports, fork/exec, readiness; throws on failure
    void wait_ready(std::chrono::steady_clock::time_point started);
    void kill_child() noexcept;

    std::string host_ = "127.0.0.1";
    std::uint16_t http_port_ = 0;
    std::uint16_t https_port_ = 0;
    std::string version_;
    std::string node_name_;
    std::string binary_;
    std::string temp_dir_;
    std::string token_; // CONSUL_HTTP_TOKEN, only for an existing agent
    pid_t pid_ = 0;
    bool external_ = false;
    bool stopped_ = false;
};

// Global fixture: `using colock::test::consul_agent_fixture; BOOST_TEST_GLOBAL_FIXTURE(consul_agent_fixture);`
// (the macro pastes its argument into an identifier, so it must be unqualified). Starts the agent in setup, so a
// failure to start shows once and clearly (or the process skips with 77), and stops it in teardown.
struct consul_agent_fixture {
    void setup();
    void teardown();
};

} // namespace colock::test

#endif // COLOCK_TEST_COMMON_CONSUL_AGENT_HPP
