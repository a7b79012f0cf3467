#ifndef COLOCK_CONSUL_CONFIG_HPP
#define COLOCK_CONSUL_CONFIG_HPP

#include <colock/consul/session_options.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace colock::consul {

/// Settings of a consul::client. An aggregate: set what you need, the rest keeps its default.
struct client_options {
    // --- where the agent is ---
    std::string host = "127.0.0.1";  ///< agent host name or address (IPv6 without brackets)
    std::uint16_t port = 8500;       ///< agent HTTP(S) port
    bool use_tls = false;            ///< https (needs COLOCK built with OpenSSL; see README)

    // --- defaults for every request (request_options overrides them) ---
    std::string token;               ///< ACL token (X-Consul-Token); never logged
    std::string datacenter;
    std::string ns;                  ///< Consul Enterprise namespace
    std::string partition;           ///< Consul Enterprise admin partition

    // --- TLS (used when use_tls) ---
    std::string tls_ca_file;
    std::string tls_ca_path;         ///< a directory of CA certificates (OpenSSL's hashed layout)
    std::string tls_cert_file;
    std::string tls_key_file;
    std::string tls_server_name;
    bool tls_verify = true;

    // --- transport ---
    /// Upper bound on open connections to the agent. Consul allows 200 per client IP by default;
    /// every blocking query holds one connection for its whole wait.
    std::size_t max_connections = 96;
    /// Connections kept for non-blocking requests (renewals, writes), never used by blocking queries,
    /// so watches cannot starve session renewal.
    std::size_t reserved_connections = 8;
    std::chrono::milliseconds connect_timeout{std::chrono::seconds(2)};
    /// Deadline of one non-blocking request attempt (connect, send, full reply).
    std::chrono::milliseconds request_timeout{std::chrono::seconds(10)};
    /// Blocking reads get wait + wait/16 + this before their deadline fires.
    std::chrono::milliseconds blocking_slack{std::chrono::seconds(2)};
    /// `wait` of a blocking read that does not set one.
    std::chrono::milliseconds default_wait{std::chrono::seconds(60)};
    /// Idle pooled connections older than this are closed instead of reused.
    std::chrono::milliseconds idle_timeout{std::chrono::seconds(30)};
    std::size_t max_response_bytes = 16u << 20;
    // --- watches of lock keys (shared by every lock of this client) ---
    /// Most blocking queries the client's lock watches keep open at once (one per watched key,
    /// however many local users it has). Keys beyond it are verified together through /v1/txn
    /// reads instead: held keys at least every half session TTL, waiting keys every
    /// lock_options::poll_interval. At most max_connections - reserved_connections.
    std::size_t max_watches = 64;
    /// `wait` of each watch query.
    std::chrono::milliseconds watch_wait{std::chrono::seconds(30)};

    // --- retries (reads, and writes known not to have been sent) ---
    unsigned max_attempts = 4;
    std::chrono::milliseconds backoff_initial{50};
    std::chrono::milliseconds backoff_max{std::chrono::seconds(2)};

    /// Settings of the session a client shares among its users (client::shared_session()).
    session_options shared_session;

    /// Reads the variables the `consul` CLI reads: CONSUL_HTTP_ADDR (host:port, http://..., https://...,
    /// unix sockets are not supported), CONSUL_HTTP_TOKEN, CONSUL_HTTP_TOKEN_FILE, CONSUL_HTTP_SSL,
    /// CONSUL_HTTP_SSL_VERIFY, CONSUL_CACERT, CONSUL_CAPATH, CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY,
    /// CONSUL_TLS_SERVER_NAME, CONSUL_DATACENTER, CONSUL_NAMESPACE, CONSUL_PARTITION.
    /// Unset variables keep the defaults. Throws boost::system::system_error (errc::invalid_config) whose
    /// message names the variable at fault; never includes a token's value.
    static client_options from_env();

    /// As from_env(), reading variables through `getenv` (for tests and embedding).
    using env_lookup = std::function<std::optional<std::string>(std::string_view)>;
    static client_options from_env(const env_lookup& getenv);
};

} // namespace colock::consul

#endif
