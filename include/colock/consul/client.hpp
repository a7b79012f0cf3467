#ifndef COLOCK_CONSUL_CLIENT_HPP
#define COLOCK_CONSUL_CLIENT_HPP

#include <colock/consul/config.hpp>
#include <colock/consul/kv.hpp>
#include <colock/consul/query.hpp>
#include <colock/consul/session_id.hpp>
#include <colock/consul/session_options.hpp>
#include <colock/consul/txn.hpp>
#include <colock/detail/initiate.hpp>
#include <colock/error.hpp>
#include <colock/logger.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/deferred.hpp>

#include <memory>
#include <string>
#include <vector>

namespace colock::consul {

class session;

namespace detail {
struct client_impl;
}

/// An asynchronous client of one Consul agent's HTTP API.
///
/// It owns a bounded pool of keep-alive connections, puts a deadline on every request, and retries
/// what is safe to retry (reads; writes that provably never left). Every operation is asynchronous,
/// takes an optional completion token (default asio::deferred, so `co_await c.kv_get(k)` works) and
/// supports per-operation cancellation of any kind: the request in flight is abandoned at once and
/// its connection closed. A cancelled or timed-out write may or may not have been applied.
///
/// Completion handlers run on the handler's associated executor (default: the client's).
/// Thread safety: every operation may be started from any thread, also concurrently, and on a
/// multi-threaded executor (a thread_pool, an io_context run by several threads): the client keeps
/// its state on a strand of its own. The client must outlive its sessions, recipes and pending
/// operations; destroying it cancels whatever is pending (handlers complete with errc::client_closed
/// or operation_aborted).
class client {
public:
    using executor_type = boost::asio::any_io_executor;

    explicit client(executor_type ex, client_options opts = {}, colock::logger log = {});
    client(const client&) = delete;
    client& operator=(const client&) = delete;
    ~client();

    executor_type get_executor() const noexcept;
    const client_options& options() const noexcept;
    const colock::logger& log() const noexcept;

    /// Cancels every pending operation of this client and stops the renewal of its sessions
    /// (their destroy requests are still sent). The client can be used again afterwards.
    /// Holds are not given back first: a held lock's key is released by Consul when its session is
    /// destroyed, and then waits out the key's lock-delay (15 s by default) before anyone else can
    /// take it. To end a program that holds locks, use close(), which releases them first.
    /// Takes effect on the client's strand, after whatever this thread started before the call.
    void cancel();

    /// Ends the client's work, for a program that is done: gives back what its locks, semaphores and
    /// elections hold (waiting for each release's first round), stops their pending acquires, closes
    /// the shared session (destroying it in Consul), then does what cancel() does: every other pending
    /// operation is cancelled and every session stops renewing. Afterwards nothing of the client keeps
    /// the event loop busy but the destroy requests of sessions it did not close itself (bounded by
    /// request_timeout). Signature: void(error_code): the first release or destroy error, if any.
    /// The client stays usable (a later operation starts afresh, as after cancel()).
    template <boost::asio::completion_token_for<void(error_code)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto close(Token&& token = {})
    {
        return colock::detail::initiate<void(error_code)>(get_executor(), std::forward<Token>(token),
                                                           [this](auto h) { close_impl(std::move(h)); });
    }

    /// The session shared by every recipe that does not bring its own (created on first use with
    /// client_options::shared_session, renewed in the background, destroyed with the client).
    session& shared_session();

    // ---------------------------------------------------------------- KV

    /// Asynchronously reads one key. Completes with `entry` empty when the key does not exist.
    /// Signature: void(error_code, kv_get_result). A blocking query when `opts.index` is non-zero.
    template <boost::asio::completion_token_for<void(error_code, kv_get_result)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto kv_get(std::string key, query_options opts = {}, Token&& token = {})
    {
        return colock::detail::initiate<void(error_code, kv_get_result)>(
            get_executor(), std::forward<Token>(token),
            [this](auto h, std::string k, query_options o) { kv_get_impl(std::move(k), std::move(o), std::move(h)); },
            std::move(key), std::move(opts));
    }

    /// Asynchronously reads every key that starts with `prefix` (possibly none).
    /// Signature: void(error_code, kv_list_result).
    template <boost::asio::completion_token_for<void(error_code, kv_list_result)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto kv_list(std::string prefix, query_options opts = {}, Token&& token = {})
    {
        return colock::detail::initiate<void(error_code, kv_list_result)>(
            get_executor(), std::forward<Token>(token),
            [this](auto h, std::string p, query_options o) { kv_list_impl(std::move(p), std::move(o), std::move(h)); },
            std::move(prefix), std::move(opts));
    }

    /// Asynchronously lists the key names under `prefix`, up to `separator` when it is not empty.
    /// Signature: void(error_code, kv_keys_result).
    template <boost::asio::completion_token_for<void(error_code, kv_keys_result)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto kv_keys(std::string prefix, std::string separator = {}, query_options opts = {}, Token&& token = {})
    {
        return colock::detail::initiate<void(error_code, kv_keys_result)>(
            get_executor(), std::forward<Token>(token),
            [this](auto h, std::string p, std::string s, query_options o) {
                kv_keys_impl(std::move(p), std::move(s), std::move(o), std::move(h));
            },
            std::move(prefix), std::move(separator), std::move(opts));
    }

    /// Asynchronously writes a key. Completes with Consul's verdict: true when the write (or the
    /// cas / acquire / release) took effect. Signature: void(error_code, bool).
    template <boost::asio::completion_token_for<void(error_code, bool)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto kv_put(std::string key, std::string value, kv_put_options put = {}, write_options opts = {},
                              Token&& token = {})
    {
        return colock::detail::initiate<void(error_code, bool)>(
            get_executor(), std::forward<Token>(token),
            [this](auto h, std::string k, std::string v, kv_put_options p, write_options o) {
                kv_put_impl(std::move(k), std::move(v), std::move(p), std::move(o), std::move(h));
            },
            std::move(key), std::move(value), std::move(put), std::move(opts));
    }

    /// Asynchronously deletes a key (or a prefix with `recurse`). Signature: void(error_code, bool).
    template <boost::asio::completion_token_for<void(error_code, bool)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto kv_delete(std::string key, kv_delete_options del = {}, write_options opts = {}, Token&& token = {})
    {
        return colock::detail::initiate<void(error_code, bool)>(
            get_executor(), std::forward<Token>(token),
            [this](auto h, std::string k, kv_delete_options d, write_options o) {
                kv_delete_impl(std::move(k), std::move(d), std::move(o), std::move(h));
            },
            std::move(key), std::move(del), std::move(opts));
    }

    /// Asynchronously runs a KV transaction (at most 64 operations, else errc::too_many_operations).
    /// A rollback completes without error and `committed == false`. A transaction of reads and
    /// checks only is retried like a read. Signature: void(error_code, txn_result).
    template <boost::asio::completion_token_for<void(error_code, txn_result)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto txn(std::vector<txn_op> ops, write_options opts = {}, Token&& token = {})
    {
        return colock::detail::initiate<void(error_code, txn_result)>(
            get_executor(), std::forward<Token>(token),
            [this](auto h, std::vector<txn_op> t, write_options o) { txn_impl(std::move(t), std::move(o), std::move(h)); },
            std::move(ops), std::move(opts));
    }

    // ---------------------------------------------------------------- sessions

    /// Asynchronously creates a session. Signature: void(error_code, session_id).
    template <boost::asio::completion_token_for<void(error_code, session_id)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto session_create(session_options s = {}, write_options opts = {}, Token&& token = {})
    {
        return colock::detail::initiate<void(error_code, session_id)>(
            get_executor(), std::forward<Token>(token),
            [this](auto h, session_options so, write_options o) {
                session_create_impl(std::move(so), std::move(o), std::move(h));
            },
            std::move(s), std::move(opts));
    }

    /// Asynchronously renews a session. Completes with the session as Consul now describes it (its
    /// TTL may be larger than requested), or errc::session_invalidated when Consul no longer knows
    /// it (HTTP 404). Signature: void(error_code, session_entry).
    template <boost::asio::completion_token_for<void(error_code, session_entry)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto session_renew(session_id id, write_options opts = {}, Token&& token = {})
    {
        return colock::detail::initiate<void(error_code, session_entry)>(
            get_executor(), std::forward<Token>(token),
            [this](auto h, session_id i, write_options o) { session_renew_impl(std::move(i), std::move(o), std::move(h)); },
            std::move(id), std::move(opts));
    }

    /// Asynchronously destroys a session (idempotent: an unknown id also succeeds). Keys it still
    /// holds are released and get lock-delay. Signature: void(error_code, bool).
    template <boost::asio::completion_token_for<void(error_code, bool)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto session_destroy(session_id id, write_options opts = {}, Token&& token = {})
    {
        return colock::detail::initiate<void(error_code, bool)>(
            get_executor(), std::forward<Token>(token),
            [this](auto h, session_id i, write_options o) { session_destroy_impl(std::move(i), std::move(o), std::move(h)); },
            std::move(id), std::move(opts));
    }

    /// Asynchronously reads one session; `entry` is empty when it does not exist.
    /// Signature: void(error_code, session_info_result).
    template <boost::asio::completion_token_for<void(error_code, session_info_result)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto session_info(session_id id, query_options opts = {}, Token&& token = {})
    {
        return colock::detail::initiate<void(error_code, session_info_result)>(
            get_executor(), std::forward<Token>(token),
            [this](auto h, session_id i, query_options o) { session_info_impl(std::move(i), std::move(o), std::move(h)); },
            std::move(id), std::move(opts));
    }

    /// Asynchronously lists every session of the datacenter. Signature: void(error_code, session_list_result).
    template <boost::asio::completion_token_for<void(error_code, session_list_result)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto session_list(query_options opts = {}, Token&& token = {})
    {
        return colock::detail::initiate<void(error_code, session_list_result)>(
            get_executor(), std::forward<Token>(token),
            [this](auto h, query_options o) { session_list_impl(std::move(o), std::move(h)); }, std::move(opts));
    }

    // ---------------------------------------------------------------- status

    /// Asynchronously asks for the Raft leader's address ("" when there is none).
    /// Signature: void(error_code, std::string).
    template <boost::asio::completion_token_for<void(error_code, std::string)> Token = boost::asio::deferred_t>
    [[nodiscard]] auto status_leader(request_options opts = {}, Token&& token = {})
    {
        return colock::detail::initiate<void(error_code, std::string)>(
            get_executor(), std::forward<Token>(token),
            [this](auto h, request_options o) { status_leader_impl(std::move(o), std::move(h)); }, std::move(opts));
    }

    /// The private implementation (used by colock's own recipes).
    const std::shared_ptr<detail::client_impl>& impl() const noexcept { return impl_; }

private:
    template <class T>
    using handler = boost::asio::any_completion_handler<void(error_code, T)>;

    void close_impl(boost::asio::any_completion_handler<void(error_code)> h);
    void kv_get_impl(std::string key, query_options opts, handler<kv_get_result> h);
    void kv_list_impl(std::string prefix, query_options opts, handler<kv_list_result> h);
    void kv_keys_impl(std::string prefix, std::string separator, query_options opts, handler<kv_keys_result> h);
    void kv_put_impl(std::string key, std::string value, kv_put_options put, write_options opts, handler<bool> h);
    void kv_delete_impl(std::string key, kv_delete_options del, write_options opts, handler<bool> h);
    void txn_impl(std::vector<txn_op> ops, write_options opts, handler<txn_result> h);
    void session_create_impl(session_options s, write_options opts, handler<session_id> h);
    void session_renew_impl(session_id id, write_options opts, handler<session_entry> h);
    void session_destroy_impl(session_id id, write_options opts, handler<bool> h);
    void session_info_impl(session_id id, query_options opts, handler<session_info_result> h);
    void session_list_impl(query_options opts, handler<session_list_result> h);
    void status_leader_impl(request_options opts, handler<std::string> h);

    std::shared_ptr<detail::client_impl> impl_;
};

} // namespace colock::consul

#endif
