// consul::client: each operation validates its arguments, builds one HTTP request, sends it through
// client_impl::send (deadline, pool, retries) and decodes the reply. Decoding lives in codec.cpp.

#include <colock/consul/client.hpp>
#include <colock/consul/session.hpp>

#include "consul/client_impl.hpp"
#include "consul/codec.hpp"
#include "consul/op.hpp"
#include "consul/ops.hpp"
#include "detail/encoding.hpp"
#include "detail/go_duration.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace colock::consul {

using detail::http_request;
using detail::http_response;
using detail::op_result;
namespace asio = boost::asio;
using asio::awaitable;

namespace {

error_code invalid(diagnostics* diag, const std::string& message)
{
    detail::set_diagnostics(diag, nullptr, message);
    return make_error_code(errc::invalid_argument);
}

// Keys: non-empty, no leading '/', no NUL (Consul would turn these into other keys or errors).
bool valid_key(std::string_view key, bool allow_empty = false)
{
    if (key.empty())
        return allow_empty;
    return key.front() != '/' && key.find('\0') == std::string_view::npos;
}

bool valid_session(const session_id& id)
{
    if (id.empty() || id.str().size() > 128)
        return false;
    return std::all_of(id.str().begin(), id.str().end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
    });
}

void add_param(std::string& target, std::string_view name, std::string_view value = {})
{
    target += target.find('?') == std::string::npos ? '?' : '&';
    target += name;
    if (!value.empty()) {
        target += '=';
        target += colock::detail::encode_query_value(value);
    }
}

// dc / ns / partition and the token, from the request or else the client's defaults.
void apply_common(http_request& req, const request_options& o, const client_options& c)
{
    const auto& dc = o.datacenter.empty() ? c.datacenter : o.datacenter;
    const auto& ns = o.ns.empty() ? c.ns : o.ns;
    const auto& part = o.partition.empty() ? c.partition : o.partition;
    if (!dc.empty())
        add_param(req.target, "dc", dc);
    if (!ns.empty())
        add_param(req.target, "ns", ns);
    if (!part.empty())
        add_param(req.target, "partition", part);
    req.token = o.token.empty() ? c.token : o.token;
    req.timeout = o.timeout;
}

error_code apply_query(http_request& req, const query_options& o, const client_options& c)
{
    if (o.wait.count() < 0 || o.timeout.count() < 0)
        return invalid(o.diag, "wait and timeout must not be negative");
    apply_common(req, o, c);
    if (o.consistency == consistency_mode::consistent)
        add_param(req.target, "consistent");
    else if (o.consistency == consistency_mode::stale)
        add_param(req.target, "stale");
    if (o.index > 0) {
        const auto wait = o.wait.count() > 0 ? o.wait : c.default_wait;
        add_param(req.target, "index", std::to_string(o.index));
        add_param(req.target, "wait", colock::detail::format_go_duration(wait));
        // The server may hold the query for wait + wait/16; the deadline allows for that plus slack.
        const auto needed = wait + wait / 16 + c.blocking_slack;
        req.timeout = std::max(o.timeout, needed);
        req.blocking = true;
    }
    return {};
}

void apply_write(http_request& req, const write_options& o, const client_options& c)
{
    apply_common(req, o, c);
    req.idempotent = false;
}

// X-Consul-* headers of a read; the index is mandatory on every successful read.
error_code read_meta(const http_response& resp, query_meta& meta)
{
    if (!resp.index || resp.index_malformed)
        return make_error_code(errc::bad_response);
    meta.index = *resp.index;
    meta.known_leader = resp.known_leader;
    meta.last_contact = resp.last_contact;
    return {};
}

// Maps a reply's status: 2xx ok; anything else becomes an error in category colock.http, with
// Consul's text in the diagnostics and the log.
error_code check_status(detail::client_impl& impl, const http_request& req, const http_response& resp,
                        diagnostics* diag)
{
    if (resp.status >= 200 && resp.status < 300)
        return {};
    detail::set_diagnostics(diag, &resp, req.what + ": HTTP " + std::to_string(resp.status));
    impl.warn(req.what + ": HTTP " + std::to_string(resp.status) + ": " + colock::detail::printable(resp.body, 256));
    return make_http_error(resp.status);
}

error_code decode_failed(detail::client_impl& impl, const http_request& req, const http_response& resp,
                         diagnostics* diag)
{
    detail::set_diagnostics(diag, &resp, req.what + ": malformed response");
    impl.warn(req.what + ": malformed response: " + colock::detail::printable(resp.body, 256));
    return make_error_code(errc::bad_response);
}

http_request make_request(const char* method, std::string target, std::string what)
{
    http_request r;
    r.method = method;
    r.target = std::move(target);
    r.what = std::move(what);
    return r;
}

std::string kv_target(std::string_view key) { return "/v1/kv/" + colock::detail::encode_key_path(key); }

// Runs one request; transport errors are reported with diagnostics.
awaitable<std::tuple<error_code, http_response>> exchange(const std::shared_ptr<detail::client_impl>& impl,
                                                          http_request req, diagnostics* diag)
{
    // A token goes into a header: control characters would let it inject other headers.
    if (std::any_of(req.token.begin(), req.token.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
        co_return std::tuple{invalid(diag, "the ACL token contains control characters"), http_response{}};
    auto [ec, resp] = co_await impl->send(req);
    if (ec && ec != asio::error::operation_aborted)
        detail::set_diagnostics(diag, nullptr, req.what + ": " + ec.message());
    co_return std::tuple{ec, std::move(resp)};
}

} // namespace

namespace detail {

std::shared_ptr<session> client_impl::shared_session()
{
    std::lock_guard guard(shared_session_mutex_);
    if (!shared_session_)
        shared_session_ = std::make_shared<session>(shared_from_this(), options.shared_session);
    return shared_session_;
}

void client_impl::add_closable(std::weak_ptr<closable> c)
{
    std::lock_guard guard(closables_mutex_);
    if (closables_.size() >= 64 && closables_.size() == closables_.capacity()) // amortised O(1): prune before growing
        std::erase_if(closables_, [](const std::weak_ptr<closable>& w) { return w.expired(); });
    closables_.push_back(std::move(c));
}

std::vector<std::shared_ptr<closable>> client_impl::live_closables()
{
    std::lock_guard guard(closables_mutex_);
    std::erase_if(closables_, [](const std::weak_ptr<closable>& w) { return w.expired(); });
    std::vector<std::shared_ptr<closable>> live;
    for (auto& w : closables_)
        if (auto c = w.lock())
            live.push_back(std::move(c));
    return live;
}

std::shared_ptr<session> client_impl::shared_session_if_any()
{
    std::lock_guard guard(shared_session_mutex_);
    return shared_session_;
}

void client_impl::close_shared_session()
{
    std::shared_ptr<session> closing;
    {
        std::lock_guard guard(shared_session_mutex_);
        closing = std::move(shared_session_);
    }
}

// Note for every coroutine here: GCC 12 miscompiles prvalues of classes without user-provided
// constructors (aggregates, lambdas) inside a co_await expression. Name them first.

// A read: send, accept 200 (and 404 when `absent_is_empty`: a missing key or prefix), take the
// X-Consul-* metadata, then let `decode(body, result)` fill the result of a 200.
template <class Result, class Decode>
awaitable<op_result<Result>> run_read(std::shared_ptr<detail::client_impl> impl, http_request req, query_options o,
                                      bool absent_is_empty, Decode decode)
{
    Result out;
    if (auto ec = apply_query(req, o, impl->options))
        co_return op_result<Result>{ec, Result{}};
    auto [ec, resp] = co_await exchange(impl, req, o.diag);
    if (ec)
        co_return op_result<Result>{ec, Result{}};
    const bool absent = absent_is_empty && resp.status == 404;
    if (!absent) {
        if (auto sec = check_status(*impl, req, resp, o.diag))
            co_return op_result<Result>{sec, Result{}};
    }
    if (read_meta(resp, out.meta) || (!absent && !decode(resp.body, out)))
        co_return op_result<Result>{decode_failed(*impl, req, resp, o.diag), Result{}};
    co_return op_result<Result>{error_code{}, std::move(out)};
}

awaitable<op_result<kv_get_result>> kv_get_body(std::shared_ptr<detail::client_impl> impl, std::string key,
                                                query_options o)
{
    if (!valid_key(key))
        co_return op_result<kv_get_result>{invalid(o.diag, "invalid key"), kv_get_result{}};
    auto req = make_request("GET", kv_target(key), "kv get '" + key + "'");
    auto decode = [key](std::string_view body, kv_get_result& out) {
        std::vector<kv_entry> entries;
        if (detail::decode_kv_entries(body, entries) || entries.size() != 1 || entries[0].key != key)
            return false;
        out.entry = std::move(entries[0]);
        return true;
    };
    co_return co_await run_read<kv_get_result>(impl, std::move(req), std::move(o), true, std::move(decode));
}

awaitable<op_result<kv_list_result>> kv_list_body(std::shared_ptr<detail::client_impl> impl, std::string prefix,
                                                  query_options o)
{
    if (!valid_key(prefix, true))
        co_return op_result<kv_list_result>{invalid(o.diag, "invalid prefix"), kv_list_result{}};
    auto req = make_request("GET", kv_target(prefix), "kv list '" + prefix + "'");
    add_param(req.target, "recurse");
    auto decode = [prefix](std::string_view body, kv_list_result& out) {
        return !detail::decode_kv_entries(body, out.entries) &&
               std::all_of(out.entries.begin(), out.entries.end(),
                           [&](const kv_entry& e) { return e.key.starts_with(prefix); });
    };
    co_return co_await run_read<kv_list_result>(impl, std::move(req), std::move(o), true, std::move(decode));
}

awaitable<op_result<kv_keys_result>> kv_keys_body(std::shared_ptr<detail::client_impl> impl, std::string prefix,
                                                  std::string separator, query_options o)
{
    if (!valid_key(prefix, true))
        co_return op_result<kv_keys_result>{invalid(o.diag, "invalid prefix"), kv_keys_result{}};
    auto req = make_request("GET", kv_target(prefix), "kv keys '" + prefix + "'");
    add_param(req.target, "keys");
    if (!separator.empty())
        add_param(req.target, "separator", separator);
    auto decode = [prefix](std::string_view body, kv_keys_result& out) {
        return !detail::decode_keys(body, out.keys) &&
               std::all_of(out.keys.begin(), out.keys.end(), [&](const std::string& k) { return k.starts_with(prefix); });
    };
    co_return co_await run_read<kv_keys_result>(impl, std::move(req), std::move(o), true, std::move(decode));
}

// Writes answering a bare true/false.
awaitable<op_result<bool>> bool_write(std::shared_ptr<detail::client_impl> impl, http_request req, diagnostics* diag)
{
    auto [ec, resp] = co_await exchange(impl, req, diag);
    if (ec)
        co_return op_result<bool>{ec, false};
    if (auto sec = check_status(*impl, req, resp, diag))
        co_return op_result<bool>{sec, false};
    bool verdict = false;
    if (detail::decode_bool(resp.body, verdict))
        co_return op_result<bool>{decode_failed(*impl, req, resp, diag), false};
    co_return op_result<bool>{error_code{}, verdict};
}

awaitable<op_result<bool>> kv_put_body(std::shared_ptr<detail::client_impl> impl, std::string key, std::string value,
                                       kv_put_options p, write_options o)
{
    if (!valid_key(key))
        co_return op_result<bool>{invalid(o.diag, "invalid key"), false};
    if (int(p.cas.has_value()) + int(p.acquire.has_value()) + int(p.release.has_value()) > 1)
        co_return op_result<bool>{invalid(o.diag, "at most one of cas, acquire and release"), false};
    if ((p.acquire && !valid_session(*p.acquire)) || (p.release && !valid_session(*p.release)))
        co_return op_result<bool>{invalid(o.diag, "invalid session id"), false};
    auto req = make_request("PUT", kv_target(key), "kv put '" + key + "'");
    add_param(req.target, "flags", std::to_string(p.flags));
    if (p.cas)
        add_param(req.target, "cas", std::to_string(*p.cas));
    if (p.acquire) {
        add_param(req.target, "acquire", p.acquire->str());
        req.what = "kv acquire '" + key + "' session " + p.acquire->str();
    }
    if (p.release) {
        add_param(req.target, "release", p.release->str());
        req.what = "kv release '" + key + "' session " + p.release->str();
    }
    req.body = std::move(value);
    req.content_type = "application/octet-stream";
    apply_write(req, o, impl->options);
    co_return co_await bool_write(impl, std::move(req), o.diag);
}

awaitable<op_result<bool>> kv_delete_body(std::shared_ptr<detail::client_impl> impl, std::string key,
                                          kv_delete_options d, write_options o)
{
    if (!valid_key(key, d.recurse))
        co_return op_result<bool>{invalid(o.diag, "invalid key"), false};
    if (d.recurse && d.cas)
        co_return op_result<bool>{invalid(o.diag, "cas cannot be combined with recurse"), false};
    auto req = make_request("DELETE", kv_target(key), "kv delete '" + key + "'");
    if (d.recurse)
        add_param(req.target, "recurse");
    if (d.cas)
        add_param(req.target, "cas", std::to_string(*d.cas));
    // Not idempotent even without cas: repeated after the reply was lost, it could delete a key
    // someone re-created meanwhile.
    apply_write(req, o, impl->options);
    co_return co_await bool_write(impl, std::move(req), o.diag);
}

bool read_only(const std::vector<txn_op>& ops)
{
    return std::all_of(ops.begin(), ops.end(), [](const txn_op& op) {
        switch (op.verb) {
        case txn_verb::get:
        case txn_verb::get_tree:
        case txn_verb::check_index:
        case txn_verb::check_session:
        case txn_verb::check_not_exists: return true;
        default: return false;
        }
    });
}

awaitable<op_result<txn_result>> txn_body(std::shared_ptr<detail::client_impl> impl, std::vector<txn_op> ops,
                                          write_options o, consistency_mode read_mode)
{
    txn_result out;
    if (ops.empty())
        co_return op_result<txn_result>{invalid(o.diag, "a transaction needs at least one operation"), out};
    if (ops.size() > max_txn_operations) {
        detail::set_diagnostics(o.diag, nullptr, "at most 64 operations per transaction");
        co_return op_result<txn_result>{make_error_code(errc::too_many_operations), out};
    }
    for (const auto& op : ops) {
        const bool tree = op.verb == txn_verb::get_tree || op.verb == txn_verb::delete_tree;
        if (!valid_key(op.key, tree))
            co_return op_result<txn_result>{invalid(o.diag, "invalid key in transaction"), out};
        const bool needs_session =
            op.verb == txn_verb::lock || op.verb == txn_verb::unlock || op.verb == txn_verb::check_session;
        if (needs_session && (!op.session || !valid_session(*op.session)))
            co_return op_result<txn_result>{invalid(o.diag, "transaction operation needs a valid session"), out};
    }
    auto req = make_request("PUT", "/v1/txn", "txn (" + std::to_string(ops.size()) + " ops, first: " +
                                                std::string(detail::txn_verb_name(ops[0].verb)) + " '" + ops[0].key + "')");
    req.body = detail::encode_txn(ops);
    req.content_type = "application/json";
    apply_write(req, o, impl->options);
    const bool reads = read_only(ops);
    req.idempotent = reads;
    if (reads && read_mode == consistency_mode::consistent)
        add_param(req.target, "consistent");
    else if (reads && read_mode == consistency_mode::stale)
        add_param(req.target, "stale");
    auto [ec, resp] = co_await exchange(impl, req, o.diag);
    if (ec)
        co_return op_result<txn_result>{ec, out};
    if (resp.status != 409) {
        if (auto sec = check_status(*impl, req, resp, o.diag))
            co_return op_result<txn_result>{sec, out};
    }
    if (detail::decode_txn_result(resp.body, out))
        co_return op_result<txn_result>{decode_failed(*impl, req, resp, o.diag), txn_result{}};
    out.committed = resp.status != 409;
    if (out.committed != out.errors.empty())
        co_return op_result<txn_result>{decode_failed(*impl, req, resp, o.diag), txn_result{}};
    if (reads && resp.index)
        out.meta.index = *resp.index;
    out.meta.known_leader = resp.known_leader;
    out.meta.last_contact = resp.last_contact;
    co_return op_result<txn_result>{error_code{}, std::move(out)};
}

awaitable<op_result<session_id>> session_create_body(std::shared_ptr<detail::client_impl> impl, session_options s,
                                                      write_options o)
{
    if (s.ttl.count() < 0 || (s.lock_delay && s.lock_delay->count() < 0))
        co_return op_result<session_id>{invalid(o.diag, "ttl and lock_delay must not be negative"), session_id{}};
    auto req = make_request("PUT", "/v1/session/create", "session create '" + s.name + "'");
    req.body = detail::encode_session_create(s);
    req.content_type = "application/json";
    apply_write(req, o, impl->options);
    auto [ec, resp] = co_await exchange(impl, req, o.diag);
    if (ec)
        co_return op_result<session_id>{ec, session_id{}};
    if (auto sec = check_status(*impl, req, resp, o.diag))
        co_return op_result<session_id>{sec, session_id{}};
    session_id id;
    if (detail::decode_session_created(resp.body, id) || !valid_session(id))
        co_return op_result<session_id>{decode_failed(*impl, req, resp, o.diag), session_id{}};
    impl->info("session " + id.str() + " created ('" + s.name + "', TTL " + std::to_string(s.ttl.count()) + " ms)");
    co_return op_result<session_id>{error_code{}, std::move(id)};
}

awaitable<op_result<session_entry>> session_renew_body(std::shared_ptr<detail::client_impl> impl, session_id id,
                                                       write_options o)
{
    if (!valid_session(id))
        co_return op_result<session_entry>{invalid(o.diag, "invalid session id"), session_entry{}};
    auto req = make_request("PUT", "/v1/session/renew/" + id.str(), "session renew " + id.str());
    apply_write(req, o, impl->options);
    req.idempotent = true; // renewing twice is harmless
    auto [ec, resp] = co_await exchange(impl, req, o.diag);
    if (ec)
        co_return op_result<session_entry>{ec, session_entry{}};
    if (resp.status == 404) {
        detail::set_diagnostics(o.diag, &resp, "session " + id.str() + " no longer exists");
        co_return op_result<session_entry>{make_error_code(errc::session_invalidated), session_entry{}};
    }
    if (auto sec = check_status(*impl, req, resp, o.diag))
        co_return op_result<session_entry>{sec, session_entry{}};
    // Only the ID and the TTL matter to a renewal: an unexpected value in another field must not
    // turn every renewal into a failure (and every session into a lost one).
    session_entry renewed;
    bool vanished = false;
    if (detail::decode_session_renewal(resp.body, renewed, vanished))
        co_return op_result<session_entry>{decode_failed(*impl, req, resp, o.diag), session_entry{}};
    if (vanished) // older servers answered 200 [] for a vanished session
        co_return op_result<session_entry>{make_error_code(errc::session_invalidated), session_entry{}};
    if (renewed.id != id)
        co_return op_result<session_entry>{decode_failed(*impl, req, resp, o.diag), session_entry{}};
    co_return op_result<session_entry>{error_code{}, std::move(renewed)};
}

awaitable<op_result<bool>> session_destroy_body(std::shared_ptr<detail::client_impl> impl, session_id id,
                                                write_options o)
{
    if (!valid_session(id))
        co_return op_result<bool>{invalid(o.diag, "invalid session id"), false};
    auto req = make_request("PUT", "/v1/session/destroy/" + id.str(), "session destroy " + id.str());
    apply_write(req, o, impl->options);
    req.idempotent = true; // destroying twice is harmless
    co_return co_await bool_write(impl, std::move(req), o.diag);
}

awaitable<op_result<session_list_result>> session_read(std::shared_ptr<detail::client_impl> impl,
                                                       std::string target, std::string what, query_options o)
{
    auto req = make_request("GET", std::move(target), std::move(what));
    auto decode = [](std::string_view body, session_list_result& out) {
        return !detail::decode_session_entries(body, out.sessions);
    };
    co_return co_await run_read<session_list_result>(impl, std::move(req), std::move(o), false, std::move(decode));
}

awaitable<op_result<session_info_result>> session_info_body(std::shared_ptr<detail::client_impl> impl,
                                                            session_id id, query_options o)
{
    if (!valid_session(id))
        co_return op_result<session_info_result>{invalid(o.diag, "invalid session id"), session_info_result{}};
    auto [ec, list] = co_await session_read(impl, "/v1/session/info/" + id.str(), "session info " + id.str(), o);
    session_info_result out;
    out.meta = list.meta;
    if (ec)
        co_return op_result<session_info_result>{ec, out};
    if (list.sessions.size() > 1 || (list.sessions.size() == 1 && list.sessions[0].id != id)) {
        detail::set_diagnostics(o.diag, nullptr, "session info answered for another session");
        co_return op_result<session_info_result>{make_error_code(errc::bad_response), session_info_result{}};
    }
    if (!list.sessions.empty())
        out.entry = std::move(list.sessions[0]);
    co_return op_result<session_info_result>{error_code{}, std::move(out)};
}

// A GET of agent information (no X-Consul-* metadata): 200 and a body `decode` turns into a string.
static awaitable<op_result<std::string>> agent_string(std::shared_ptr<detail::client_impl> impl, const char* target,
                                                      const char* what, request_options o,
                                                      error_code (*decode)(std::string_view, std::string&))
{
    auto req = make_request("GET", target, what);
    apply_common(req, o, impl->options);
    auto [ec, resp] = co_await exchange(impl, req, o.diag);
    if (ec)
        co_return op_result<std::string>{ec, std::string{}};
    if (auto sec = check_status(*impl, req, resp, o.diag))
        co_return op_result<std::string>{sec, std::string{}};
    std::string out;
    if (decode(resp.body, out))
        co_return op_result<std::string>{decode_failed(*impl, req, resp, o.diag), std::string{}};
    co_return op_result<std::string>{error_code{}, std::move(out)};
}

awaitable<op_result<std::string>> status_leader_body(std::shared_ptr<detail::client_impl> impl, request_options o)
{
    return agent_string(std::move(impl), "/v1/status/leader", "status leader", std::move(o), detail::decode_json_string);
}

awaitable<op_result<std::string>> agent_datacenter_body(std::shared_ptr<detail::client_impl> impl, request_options o)
{
    return agent_string(std::move(impl), "/v1/agent/self", "agent self", std::move(o), detail::decode_agent_datacenter);
}

awaitable<std::string> client_impl::place_of(const request_options& r)
{
    const auto& dc = r.datacenter.empty() ? options.datacenter : r.datacenter;
    const auto& ns = r.ns.empty() ? options.ns : r.ns;
    const auto& part = r.partition.empty() ? options.partition : r.partition;
    auto place = [&](const std::string& d) { return d + '\x1f' + ns + '\x1f' + part; };
    // Only a datacenter named where the client's default names none can be the agent's own under
    // another spelling; the agent's name for it is asked once.
    if (dc.empty() || !options.datacenter.empty() || agent_datacenter_unknown_)
        co_return place(dc);
    if (!agent_datacenter_) {
        request_options ask;
        ask.token = r.token;
        auto [ec, name] = co_await agent_datacenter_body(shared_from_this(), ask);
        if (agent_datacenter_) {
            // another acquire learned it meanwhile
        } else if (ec == boost::asio::error::operation_aborted) {
            co_return place(dc); // the caller was cancelled: it will not use the answer
        } else if (!ec) {
            agent_datacenter_ = std::move(name);
        } else {
            // Without it, a datacenter is taken as spelled: two spellings of the agent's own then take two
            // local turns, but their locks hold with different sessions, so Consul still keeps them apart.
            warn("the agent's datacenter is unknown (" + ec.message() + "): locks naming datacenter '" + dc +
                 "' take local turns apart from those naming none");
            if (!is_retryable(ec))
                agent_datacenter_unknown_ = true; // e.g. 403 without agent:read: asking again would not help
            co_return place(dc);
        }
    }
    co_return place(dc == *agent_datacenter_ ? std::string{} : dc);
}

} // namespace detail

client::client(executor_type ex, client_options opts, colock::logger log)
    : impl_(std::make_shared<detail::client_impl>(std::move(ex), std::move(opts), std::move(log)))
{
}

client::~client()
{
    // The implementation lets go of the shared session now (the session refers to it: keeping it would be a
    // cycle when the event loop never runs again). On the strand, cancel_all() then stops every session's
    // renewal (one a hold still refers to as well), destroys them in the background and cancels every
    // pending operation.
    impl_->close_shared_session();
    asio::post(impl_->executor, [impl = impl_] { impl->cancel_all(); });
}

client::executor_type client::get_executor() const noexcept { return impl_->user_executor; }
const client_options& client::options() const noexcept { return impl_->options; }
const colock::logger& client::log() const noexcept { return impl_->log; }
void client::cancel()
{
    asio::post(impl_->executor, [impl = impl_] { impl->cancel_all(); });
}

session& client::shared_session() { return *impl_->shared_session(); }

namespace {

// client::close(): holds first (on the shared session, which must still live: destroying it first would
// impose lock-delay on the next holders), then the shared session, then everything else.
awaitable<std::tuple<error_code>> close_body(std::shared_ptr<detail::client_impl> impl)
{
    std::vector<awaitable<error_code>> releases;
    for (auto& c : impl->live_closables())
        releases.push_back(c->close_holds()); // each starts its give-back now
    error_code first;
    for (auto& r : releases) {
        auto ec = co_await std::move(r);
        if (ec && ec != errc::not_held && !first)
            first = ec;
    }
    if (auto shared = impl->shared_session_if_any()) {
        auto [sec] = co_await shared->close(asio::as_tuple(asio::use_awaitable));
        if (sec && !first)
            first = sec;
    }
    impl->cancel_all();
    co_return std::tuple{first};
}

} // namespace

void client::close_impl(asio::any_completion_handler<void(error_code)> h)
{
    detail::launch(impl_, close_body(impl_), std::move(h));
}

void client::kv_get_impl(std::string key, query_options opts, handler<kv_get_result> h)
{
    detail::launch(impl_, kv_get_body(impl_, std::move(key), std::move(opts)), std::move(h));
}
void client::kv_list_impl(std::string prefix, query_options opts, handler<kv_list_result> h)
{
    detail::launch(impl_, kv_list_body(impl_, std::move(prefix), std::move(opts)), std::move(h));
}
void client::kv_keys_impl(std::string prefix, std::string separator, query_options opts, handler<kv_keys_result> h)
{
    detail::launch(impl_, kv_keys_body(impl_, std::move(prefix), std::move(separator), std::move(opts)), std::move(h));
}
void client::kv_put_impl(std::string key, std::string value, kv_put_options put, write_options opts, handler<bool> h)
{
    detail::launch(impl_, kv_put_body(impl_, std::move(key), std::move(value), std::move(put), std::move(opts)),
                   std::move(h));
}
void client::kv_delete_impl(std::string key, kv_delete_options del, write_options opts, handler<bool> h)
{
    detail::launch(impl_, kv_delete_body(impl_, std::move(key), std::move(del), std::move(opts)), std::move(h));
}
void client::txn_impl(std::vector<txn_op> ops, write_options opts, handler<txn_result> h)
{
    detail::launch(impl_, txn_body(impl_, std::move(ops), std::move(opts)), std::move(h));
}
void client::session_create_impl(session_options s, write_options opts, handler<session_id> h)
{
    detail::launch(impl_, session_create_body(impl_, std::move(s), std::move(opts)), std::move(h));
}
void client::session_renew_impl(session_id id, write_options opts, handler<session_entry> h)
{
    detail::launch(impl_, session_renew_body(impl_, std::move(id), std::move(opts)), std::move(h));
}
void client::session_destroy_impl(session_id id, write_options opts, handler<bool> h)
{
    detail::launch(impl_, session_destroy_body(impl_, std::move(id), std::move(opts)), std::move(h));
}
void client::session_info_impl(session_id id, query_options opts, handler<session_info_result> h)
{
    detail::launch(impl_, session_info_body(impl_, std::move(id), std::move(opts)), std::move(h));
}
void client::session_list_impl(query_options opts, handler<session_list_result> h)
{
    detail::launch(impl_, session_read(impl_, "/v1/session/list", "session list", std::move(opts)), std::move(h));
}
void client::status_leader_impl(request_options opts, handler<std::string> h)
{
    detail::launch(impl_, status_leader_body(impl_, std::move(opts)), std::move(h));
}

} // namespace colock::consul
