// The HTTP layer: a bounded pool of keep-alive connections to one agent, a deadline on every
// exchange, and the retry rules. The only translation unit that includes Beast.

#include <colock/consul/session.hpp>

#include "consul/client_impl.hpp"
#include "consul/codec.hpp"
#include "detail/backoff.hpp"
#include "detail/encoding.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>

#include <openssl/ssl.h>

#include <sys/socket.h>

#include <algorithm>

namespace colock::consul::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// One keep-alive connection: plain TCP, or TLS over TCP when client_options::use_tls.
struct connection {
    connection(asio::any_io_executor ex, asio::ssl::context* tls_context)
    {
        if (tls_context)
            tls.emplace(ex, *tls_context);
        else
            plain.emplace(ex);
    }
    beast::tcp_stream& tcp() { return tls ? beast::get_lowest_layer(*tls) : *plain; }

    std::optional<beast::tcp_stream> plain;
    std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
    beast::flat_buffer buffer;
    clock_type::time_point idle_since{};
    bool connected = false;
    bool blocking_slot = false;
};

class http_transport {
public:
    http_transport(asio::any_io_executor ex, const client_options& o) : ex_(std::move(ex)), opts_(o)
    {
        if (opts_.use_tls)
            tls_setup_error_ = make_tls_context();
    }

    // One attempt: a pool slot (waiting at most `budget`), then connect, send and read the reply
    // within `budget` counted from when the slot was obtained.
    asio::awaitable<std::tuple<error_code, http_response>> exchange(const http_request& req,
                                                                     std::chrono::milliseconds budget, bool blocking,
                                                                     bool& maybe_sent);

    void close_idle()
    {
        open_ -= idle_.size();
        idle_.clear();
        grant_waiters();
    }

private:
    // A request waiting for a slot. Slots are handed over in arrival order (per kind: a blocking read
    // that waits for the blocking share never holds up the short requests behind it): the one a
    // release frees goes to the first waiter that may use it, never to whoever asks next.
    struct waiter {
        waiter(asio::any_io_executor ex, bool b) : timer(std::move(ex)), blocking(b) {}
        asio::steady_timer timer;
        bool blocking;
        std::unique_ptr<connection> granted;
    };

    bool can_open(bool blocking) const
    {
        const std::size_t max = std::max<std::size_t>(opts_.max_connections, 1);
        const std::size_t reserved = std::min(opts_.reserved_connections, max - 1);
        if (blocking && open_blocking_ >= max - reserved)
            return false;
        return !idle_.empty() || open_ < max;
    }

    asio::awaitable<std::tuple<error_code, std::unique_ptr<connection>>> acquire(bool blocking,
                                                                                clock_type::time_point deadline);
    std::unique_ptr<connection> take_slot(bool blocking); // requires can_open(blocking)
    void grant_waiters();
    void release(std::unique_ptr<connection> c, bool reusable);
    asio::awaitable<std::tuple<error_code, std::vector<tcp::endpoint>>> resolve(clock_type::time_point deadline);

    // Gives a connection back to the pool (closed) on every path that does not hand it back
    // explicitly, including a coroutine frame destroyed while suspended.
    struct lease {
        http_transport& pool;
        std::unique_ptr<connection> conn;
        ~lease()
        {
            if (conn)
                pool.release(std::move(conn), false);
        }
    };
    static bool peer_closed(connection& c);
    std::string make_tls_context();
    asio::awaitable<error_code> tls_handshake(connection& c);

    asio::any_io_executor ex_;
    const client_options& opts_;
    std::optional<asio::ssl::context> tls_context_;
    std::string tls_setup_error_; // a TLS setting that could not be applied (reported per request)
    std::vector<std::unique_ptr<connection>> idle_;
    std::size_t open_ = 0;
    std::size_t open_blocking_ = 0;
    std::list<waiter*> waiters_;
};

std::unique_ptr<connection> http_transport::take_slot(bool blocking)
{
    std::unique_ptr<connection> c;
    // Most recently used first: the least likely to have been closed by the server.
    while (!idle_.empty() && !c) {
        c = std::move(idle_.back());
        idle_.pop_back();
        if (clock_type::now() - c->idle_since > opts_.idle_timeout || peer_closed(*c)) {
            c.reset();
            --open_;
        }
    }
    if (!c) {
        c = std::make_unique<connection>(ex_, tls_context_ ? &*tls_context_ : nullptr);
        ++open_;
    }
    c->blocking_slot = blocking;
    if (blocking)
        ++open_blocking_;
    return c;
}

void http_transport::grant_waiters()
{
    for (auto* w : waiters_) {
        if (w->granted || !can_open(w->blocking))
            continue;
        w->granted = take_slot(w->blocking);
        w->timer.cancel();
    }
}

asio::awaitable<std::tuple<error_code, std::unique_ptr<connection>>>
http_transport::acquire(bool blocking, clock_type::time_point deadline)
{
    // Every waiter that could use a free slot has been granted one (grant_waiters runs whenever a slot
    // frees), so a free slot here is not taken from anybody who came first.
    if (can_open(blocking))
        co_return std::tuple{error_code{}, take_slot(blocking)};
    waiter w(ex_, blocking);
    w.timer.expires_at(deadline);
    waiters_.push_back(&w);
    struct unlink { // also when the frame is destroyed while suspended here: a granted slot goes back
        http_transport& pool;
        waiter& self;
        ~unlink()
        {
            pool.waiters_.remove(&self);
            if (self.granted)
                pool.release(std::move(self.granted), true);
        }
    } guard{*this, w};
    (void)co_await w.timer.async_wait(use_tuple);
    auto cs = co_await asio::this_coro::cancellation_state;
    if (cs.cancelled() != asio::cancellation_type::none)
        co_return std::tuple{make_error_code(asio::error::operation_aborted), nullptr};
    if (!w.granted) // the deadline passed first
        co_return std::tuple{make_error_code(errc::request_timeout), nullptr};
    co_return std::tuple{error_code{}, std::move(w.granted)};
}

void http_transport::release(std::unique_ptr<connection> c, bool reusable)
{
    if (c->blocking_slot)
        --open_blocking_;
    c->blocking_slot = false;
    if (reusable && c->connected) {
        c->idle_since = clock_type::now();
        idle_.push_back(std::move(c));
    } else {
        --open_;
        beast::error_code ignored;
        c->tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
        c->tcp().socket().close(ignored);
    }
    grant_waiters();
}

// A pooled connection whose peer has closed it shows EOF (or an error) to a non-blocking peek.
bool http_transport::peer_closed(connection& c)
{
    if (!c.connected || !c.tcp().socket().is_open())
        return true;
    char byte;
    const auto n = ::recv(c.tcp().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0)
        return true; // orderly close
    if (n < 0)
        return errno != EAGAIN && errno != EWOULDBLOCK;
    return true; // unexpected bytes before a request (or a TLS close_notify): do not reuse
}

std::string http_transport::make_tls_context()
{
    tls_context_.emplace(asio::ssl::context::tls_client);
    auto& ctx = *tls_context_;
    error_code ec;
    ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1,
                    ec);
    if (opts_.tls_verify) {
        ctx.set_verify_mode(asio::ssl::verify_peer, ec);
        if (!opts_.tls_ca_file.empty())
            ctx.load_verify_file(opts_.tls_ca_file, ec);
        if (!ec && !opts_.tls_ca_path.empty())
            ctx.add_verify_path(opts_.tls_ca_path, ec);
        if (!ec && opts_.tls_ca_file.empty() && opts_.tls_ca_path.empty())
            ctx.set_default_verify_paths(ec);
        if (ec)
            return "cannot load the CA certificates (CONSUL_CACERT / CONSUL_CAPATH): " + ec.message();
    } else {
        ctx.set_verify_mode(asio::ssl::verify_none, ec);
    }
    if (!opts_.tls_cert_file.empty() || !opts_.tls_key_file.empty()) {
        ctx.use_certificate_chain_file(opts_.tls_cert_file, ec);
        if (ec)
            return "cannot load the client certificate (tls_cert_file): " + ec.message();
        ctx.use_private_key_file(opts_.tls_key_file, asio::ssl::context::pem, ec);
        if (ec)
            return "cannot load the client key (tls_key_file): " + ec.message();
    }
    return {};
}

asio::awaitable<error_code> http_transport::tls_handshake(connection& c)
{
    const std::string& name = opts_.tls_server_name.empty() ? opts_.host : opts_.tls_server_name;
    // SNI only for names (RFC 6066 forbids IP literals there); verification covers both.
    error_code ignored;
    asio::ip::make_address(name, ignored);
    if (ignored && !SSL_set_tlsext_host_name(c.tls->native_handle(), name.c_str()))
        co_return make_error_code(errc::invalid_config);
    if (opts_.tls_verify)
        c.tls->set_verify_callback(asio::ssl::host_name_verification(name));
    auto [ec] = co_await c.tls->async_handshake(asio::ssl::stream_base::client, use_tuple);
    co_return ec;
}

asio::awaitable<std::tuple<error_code, http_response>>
http_transport::exchange(const http_request& req, std::chrono::milliseconds budget, bool blocking, bool& maybe_sent)
{
    maybe_sent = false;
    http_response resp;
    // A cancellation that lands between two steps (its emission queued on the strand behind a step's
    // completion) reaches no pending operation: check before starting each step.
    auto cs = co_await asio::this_coro::cancellation_state;
    const auto cancelled = [&] { return cs.cancelled() != asio::cancellation_type::none; };
    auto acquired = co_await acquire(blocking, clock_type::now() + budget);
    if (std::get<0>(acquired))
        co_return std::tuple{std::get<0>(acquired), std::move(resp)};
    lease held{*this, std::move(std::get<1>(acquired))};
    auto& conn = held.conn;
    // The I/O deadline starts now: time spent waiting for a slot is not taken from a blocking
    // query's wait + wait/16 + slack.
    const auto deadline = clock_type::now() + budget;
    if (!tls_setup_error_.empty())
        co_return std::tuple{make_error_code(errc::invalid_config), std::move(resp)};

    auto fail = [&](error_code ec) {
        if (ec == beast::error::timeout)
            ec = make_error_code(errc::request_timeout);
        // A reply that breaks HTTP (bad status line, framing, limits) is Consul's fault, not the
        // network's: one typed error. EOF before or inside the reply stays a transport error.
        if (ec.category() == make_error_code(http::error::bad_version).category() &&
            ec != http::error::end_of_stream && ec != http::error::partial_message) {
            ec = make_error_code(errc::bad_response);
        }
        conn->connected = false;
        release(std::move(conn), false);
        return std::tuple{ec, http_response{}};
    };

    if (cancelled())
        co_return fail(asio::error::operation_aborted);
    if (!conn->connected) {
        const auto connect_deadline = std::min(deadline, clock_type::now() + opts_.connect_timeout);
        auto [rec, endpoints] = co_await resolve(connect_deadline);
        if (rec)
            co_return fail(rec);
        conn->tcp().expires_at(connect_deadline);
        auto [cec, ep] = co_await conn->tcp().async_connect(endpoints, use_tuple);
        if (!cec && cancelled())
            cec = asio::error::operation_aborted;
        if (cec)
            co_return fail(cec);
        error_code ignored;
        conn->tcp().socket().set_option(tcp::no_delay(true), ignored);
        conn->tcp().socket().set_option(asio::socket_base::keep_alive(true), ignored);
        if (conn->tls) {
            if (auto hec = co_await tls_handshake(*conn))
                co_return fail(hec); // nothing was sent: safe to retry like a refused connection
        }
        conn->connected = true;
        conn->buffer.clear();
    }

    http::request<http::string_body> request;
    request.method_string(req.method);
    request.target(req.target);
    request.version(11);
    // An IPv6 literal is bracketed in Host (RFC 9110 4.2.3): [::1]:8500.
    const bool ipv6_literal = opts_.host.find(':') != std::string::npos;
    request.set(http::field::host, (ipv6_literal ? "[" + opts_.host + "]" : opts_.host) + ":" + std::to_string(opts_.port));
    request.set(http::field::user_agent, "colock/0.1");
    if (!req.token.empty())
        request.set("X-Consul-Token", req.token);
    if (req.content_type)
        request.set(http::field::content_type, req.content_type);
    request.body() = req.body;
    request.keep_alive(true);
    request.prepare_payload();

    conn->tcp().expires_at(deadline);
    // (No `?:` around co_await: GCC 12 may destroy the result twice.)
    std::tuple<error_code, std::size_t> written;
    if (conn->tls)
        written = co_await http::async_write(*conn->tls, request, use_tuple);
    else
        written = co_await http::async_write(*conn->plain, request, use_tuple);
    auto [wec, wn] = written;
    // Any byte handed to the socket may reach the server; Beast can even report a timeout for a
    // write that completed. Only a write that sent nothing is known not to have been applied.
    maybe_sent = wn > 0 || !wec;
    if (wec)
        co_return fail(wec);
    if (cancelled())
        co_return fail(asio::error::operation_aborted);

    http::response_parser<http::string_body> parser;
    parser.body_limit(opts_.max_response_bytes);
    parser.header_limit(16 * 1024);
    std::tuple<error_code, std::size_t> read;
    if (conn->tls)
        read = co_await http::async_read(*conn->tls, conn->buffer, parser, use_tuple);
    else
        read = co_await http::async_read(*conn->plain, conn->buffer, parser, use_tuple);
    auto [rec, rn] = read;
    if (rec)
        co_return fail(rec);

    auto& msg = parser.get();
    resp.status = msg.result_int();
    resp.body = std::move(msg.body());
    if (auto it = msg.find("X-Consul-Index"); it != msg.end()) {
        resp.index = parse_uint64(std::string_view(it->value().data(), it->value().size()));
        resp.index_malformed = !resp.index;
    }
    if (auto it = msg.find("X-Consul-KnownLeader"); it != msg.end())
        resp.known_leader = it->value() == "true";
    if (auto it = msg.find("X-Consul-LastContact"); it != msg.end()) {
        if (auto ms = parse_uint64(std::string_view(it->value().data(), it->value().size())))
            resp.last_contact = std::chrono::milliseconds(static_cast<std::int64_t>(std::min<std::uint64_t>(*ms, 1u << 30)));
    }
    const bool reusable = msg.keep_alive() && parser.is_done() && conn->buffer.size() == 0;
    conn->tcp().expires_never();
    release(std::move(conn), reusable); // the lease is empty now
    co_return std::tuple{error_code{}, std::move(resp)};
}

// Name resolution with a deadline. Asio's resolver can neither time out nor be cancelled, so the
// lookup runs on its own and this waits on a timer: at the deadline, or on cancellation, the
// request goes on without it (the lookup finishes in the background, owning its state).
asio::awaitable<std::tuple<error_code, std::vector<tcp::endpoint>>> http_transport::resolve(clock_type::time_point deadline)
{
    std::vector<tcp::endpoint> endpoints;
    error_code ec;
    auto address = asio::ip::make_address(opts_.host, ec);
    if (!ec) {
        endpoints.emplace_back(address, opts_.port);
        co_return std::tuple{error_code{}, std::move(endpoints)};
    }
    struct lookup {
        explicit lookup(const asio::any_io_executor& ex) : resolver(ex), done(ex, clock_type::time_point::max()) {}
        tcp::resolver resolver;
        asio::steady_timer done; // cancelled when the lookup completes
        error_code ec;
        std::vector<tcp::endpoint> results;
        bool finished = false;
    };
    auto state = std::make_shared<lookup>(ex_);
    state->resolver.async_resolve(opts_.host, std::to_string(opts_.port),
                                  [state](error_code rec, const tcp::resolver::results_type& results) {
                                      state->ec = rec;
                                      for (const auto& r : results)
                                          state->results.push_back(r.endpoint());
                                      state->finished = true;
                                      state->done.cancel();
                                  });
    while (!state->finished) {
        state->done.expires_at(deadline);
        co_await state->done.async_wait(use_tuple);
        auto cs = co_await asio::this_coro::cancellation_state;
        if (cs.cancelled() != asio::cancellation_type::none)
            co_return std::tuple{make_error_code(asio::error::operation_aborted), std::move(endpoints)};
        if (!state->finished && clock_type::now() >= deadline)
            co_return std::tuple{make_error_code(errc::request_timeout), std::move(endpoints)};
    }
    if (state->ec)
        co_return std::tuple{state->ec, std::move(endpoints)};
    co_return std::tuple{error_code{}, std::move(state->results)};
}

// ------------------------------------------------------------------------------------------ client_impl

client_impl::client_impl(asio::any_io_executor ex, client_options o, colock::logger l)
    : user_executor(ex), executor(asio::make_strand(std::move(ex))), options(std::move(o)), log(std::move(l)),
      transport(std::make_unique<http_transport>(executor, options))
{
}

client_impl::~client_impl() = default;

asio::awaitable<std::tuple<error_code, http_response>> client_impl::send(http_request req)
{
    colock::detail::backoff delays(options.backoff_initial, options.backoff_max);
    const unsigned attempts = std::max(options.max_attempts, 1u);
    const auto per_attempt = req.timeout.count() > 0 ? req.timeout : options.request_timeout;
    const bool blocking = req.blocking;
    for (unsigned attempt = 1;; ++attempt) {
        bool maybe_sent = false;
        auto [ec, resp] = co_await transport->exchange(req, per_attempt, blocking, maybe_sent);
        auto cs = co_await asio::this_coro::cancellation_state;
        if (cs.cancelled() != asio::cancellation_type::none || ec == asio::error::operation_aborted)
            co_return std::tuple{make_error_code(asio::error::operation_aborted), http_response{}};

        bool retry = false;
        error_code final_ec = ec;
        if (!ec) {
            const bool transient = resp.status == 429 || resp.status >= 500;
            retry = transient && req.idempotent;
            if (!retry)
                co_return std::tuple{error_code{}, std::move(resp)};
            final_ec = make_http_error(resp.status);
        } else {
            retry = is_retryable(ec) && (req.idempotent || !maybe_sent);
            if (maybe_sent && !req.idempotent)
                final_ec = make_error_code(errc::indeterminate_write);
        }
        if (!retry || attempt >= attempts) {
            if (ec) {
                warn(req.what + " failed: " + ec.message() + (final_ec != ec ? " (outcome unknown)" : ""));
                co_return std::tuple{final_ec, http_response{}};
            }
            co_return std::tuple{error_code{}, std::move(resp)}; // the caller maps the status
        }
        const auto delay = delays.next(colock::detail::unit_random());
        debug(req.what + " attempt " + std::to_string(attempt) + " failed (" +
              (ec ? ec.message() : "HTTP " + std::to_string(resp.status)) + "), retrying in " +
              std::to_string(delay.count()) + " ms");
        asio::steady_timer timer(executor, delay);
        auto [tec] = co_await timer.async_wait(use_tuple);
        if (tec)
            co_return std::tuple{make_error_code(asio::error::operation_aborted), http_response{}};
    }
}

void client_impl::register_op(const std::shared_ptr<op_registration>& reg)
{
    if (reg->registered)
        return;
    reg->pos = ops_.insert(ops_.end(), reg);
    reg->registered = true;
}

void client_impl::unregister_op(const std::shared_ptr<op_registration>& reg)
{
    if (!reg->registered)
        return;
    reg->registered = false;
    ops_.erase(reg->pos);
}

void client_impl::cancel_all()
{
    ++cancellations_;
    // Copy first: emitting may complete operations, which unregister themselves.
    auto ops = ops_;
    for (auto& op : ops)
        op->signal.emit(asio::cancellation_type::all);
    decltype(hooks_) hooks;
    {
        std::lock_guard guard(hooks_mutex_);
        hooks = hooks_;
    }
    for (auto& [id, hook] : hooks)
        hook();
    transport->close_idle();
}

std::uint64_t client_impl::add_cancel_hook(std::function<void()> hook)
{
    std::lock_guard guard(hooks_mutex_);
    hooks_.emplace_back(next_hook_, std::move(hook));
    return next_hook_++;
}

void client_impl::remove_cancel_hook(std::uint64_t id)
{
    std::lock_guard guard(hooks_mutex_);
    std::erase_if(hooks_, [id](const auto& h) { return h.first == id; });
}

void set_diagnostics(diagnostics* diag, const http_response* resp, const std::string& client_message)
{
    if (!diag)
        return;
    diag->clear();
    diag->client_message = client_message;
    if (resp) {
        diag->http_status = resp->status;
        diag->server_message = resp->body.substr(0, 4096);
    }
}

} // namespace colock::consul::detail
