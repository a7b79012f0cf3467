#ifndef COLOCK_SRC_CONSUL_CLIENT_IMPL_HPP
#define COLOCK_SRC_CONSUL_CLIENT_IMPL_HPP

// The client's shared state. Beast-free on purpose: session.cpp and kv_watch.cpp include it; the
// HTTP machinery (and client_impl's own member functions) live in http_transport.cpp.
// Layers, top down: an operation body (client.cpp) -> client_impl::send (deadline per attempt,
// retries) -> http_transport::exchange (pool slot, connect, one request/reply).

#include <colock/consul/config.hpp>
#include <colock/diagnostics.hpp>
#include <colock/error.hpp>
#include <colock/logger.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace colock::detail {
class local_queue;
}

namespace colock::consul {
class session;
}

namespace colock::consul::detail {

class http_transport;
class watch_service;

/// One HTTP exchange as the operations describe it.
struct http_request {
    const char* method = "GET";       ///< GET, PUT or DELETE
    std::string target;               ///< path and query, already encoded
    std::string body;
    const char* content_type = nullptr;
    std::string token;                ///< ACL token (header); empty = none
    bool idempotent = true;           ///< may be sent again after it possibly reached the server
    bool blocking = false;            ///< a blocking query (holds its connection for the whole wait)
    std::chrono::milliseconds timeout{0}; ///< per-attempt deadline; zero = client's request_timeout
    std::string what;                 ///< for logs and diagnostics, e.g. "kv get 'a/b'"
};

struct http_response {
    unsigned status = 0;
    std::string body;
    std::optional<std::uint64_t> index; ///< X-Consul-Index, when present and valid
    bool index_malformed = false;       ///< X-Consul-Index present but not a uint64
    bool known_leader = false;
    std::chrono::milliseconds last_contact{0};
};

/// A registered pending operation: client::cancel() emits on its signal.
struct op_registration {
    boost::asio::cancellation_signal signal;
    std::list<std::shared_ptr<op_registration>>::iterator pos; ///< in the client's registry, while registered
    bool registered = false;
};

/// A recipe object whose holds client::close() gives back (locks and semaphores register themselves).
struct closable {
    virtual ~closable() = default;
    /// On the strand: stops a pending acquire and starts giving back what is held, at once; the returned
    /// awaitable completes with the outcome of the give-back's first round.
    virtual boost::asio::awaitable<error_code> close_holds() = 0;
};

struct client_impl : std::enable_shared_from_this<client_impl> {
    client_impl(boost::asio::any_io_executor ex, client_options o, colock::logger l);
    ~client_impl();

    /// The executor the client was made with: completions of the user's handlers default to it.
    boost::asio::any_io_executor user_executor;
    /// A strand on `user_executor`: every piece of the client's state, and of its sessions, watches and
    /// recipes, is touched only there, so operations may be started from any thread.
    boost::asio::any_io_executor executor;
    client_options options;
    colock::logger log;
    std::unique_ptr<http_transport> transport;

    /// Sends a request with the client's deadline and retry rules. Never throws.
    boost::asio::awaitable<std::tuple<error_code, http_response>> send(http_request req);

    /// On the strand: client::cancel() reaches a registered operation. O(1) both ways.
    void register_op(const std::shared_ptr<op_registration>& reg);
    void unregister_op(const std::shared_ptr<op_registration>& reg);
    /// Cancels every registered operation and closes idle connections.
    void cancel_all();
    /// How many times cancel_all() ran (client::cancel() and the client's destruction): background
    /// work that is not a registered operation checks it to stop too.
    std::uint64_t cancellations() const noexcept { return cancellations_; }
    /// Hooks run by cancel_all() (sessions stop renewing through them). Callable from any thread.
    std::uint64_t add_cancel_hook(std::function<void()> hook);
    void remove_cancel_hook(std::uint64_t id);

    /// Recipes register here for client::close() (from any thread; expired entries are dropped).
    void add_closable(std::weak_ptr<closable> c);
    std::vector<std::shared_ptr<closable>> live_closables();

    /// The session shared by recipes without their own (created on first use, from any thread). A hold
    /// keeps it while it needs it; client::cancel() and the client's end stop it all the same.
    std::shared_ptr<consul::session> shared_session();
    std::shared_ptr<consul::session> shared_session_if_any(); ///< null before first use
    /// Destroys the shared session object (from any thread); its renewal stops on the strand.
    void close_shared_session();

    /// The watch service of colock's recipes (created on first use; watch_service.cpp).
    watch_service& watches();
    /// Local exclusion of lock objects per key (created on first use; local_queue.cpp).
    colock::detail::local_queue& local_locks();
    /// On the strand: where requests with `r` go (datacenter, namespace and partition) however they are
    /// spelled: empty fields are the client's defaults, and the agent's own datacenter is "" whether
    /// named or not (its name is asked once, from /v1/agent/self, when a request names a datacenter and
    /// the client's defaults name none; if that fails, a datacenter counts as spelled). client.cpp.
    boost::asio::awaitable<std::string> place_of(const request_options& r);

    /// Tests only (consul/testing.hpp): called on the strand at the top of each round of a background task,
    /// with the task's name; a test makes the task fail by throwing from it. Empty otherwise.
    std::function<void(std::string_view task)> round_hook;
    void at_round(std::string_view task) const
    {
        if (round_hook)
            round_hook(task);
    }

    void debug(const std::string& line) const { log.log(logger::level::debug, line); }
    void info(const std::string& line) const { log.log(logger::level::info, line); }
    void warn(const std::string& line) const { log.log(logger::level::warning, line); }

private:
    std::list<std::shared_ptr<op_registration>> ops_;
    std::mutex hooks_mutex_;
    std::vector<std::pair<std::uint64_t, std::function<void()>>> hooks_;
    std::mutex closables_mutex_;
    std::vector<std::weak_ptr<closable>> closables_;
    std::mutex shared_session_mutex_;
    std::shared_ptr<consul::session> shared_session_;
    std::uint64_t next_hook_ = 1;
    std::optional<std::string> agent_datacenter_; ///< learned by place_of()
    bool agent_datacenter_unknown_ = false;       ///< /v1/agent/self refused: not asked again
    std::uint64_t cancellations_ = 0;
    // Last, so they go first: their destructors still use the hooks above.
    std::shared_ptr<watch_service> watches_;
    std::shared_ptr<colock::detail::local_queue> local_locks_;
};

/// Fills `diag` (when set) for a failed exchange.
void set_diagnostics(diagnostics* diag, const http_response* resp, const std::string& client_message);

} // namespace colock::consul::detail

#endif
