// The managed session: creation shared by concurrent callers, a renewal loop, a fail-safe watchdog
// timer that declares loss at the deadline whatever the network does, and loss fan-out.
// Decisions are in session_liveness; this file only drives I/O and timers.

#include <colock/consul/session.hpp>

#include "consul/background.hpp"
#include "consul/client_impl.hpp"
#include "consul/op.hpp"
#include "consul/ops.hpp"
#include "consul/session_liveness.hpp"
#include "detail/backoff.hpp"
#include "detail/strand_cancellation.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace colock::consul::detail {

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

// D2 (TESTING.md): a session bound to health checks can be invalidated at any moment; the keys it
// held become available to others once its lock-delay has passed. Trust it only that long after
// each confirmation. Without checks (or with lock-delay 0, where nothing can be promised by time)
// the TTL alone bounds it.
std::chrono::milliseconds confirmation_window(const session_options& o)
{
    const bool has_checks = !o.node_checks || !o.node_checks->empty() || !o.service_checks.empty();
    if (!has_checks)
        return std::chrono::milliseconds(0);
    return o.lock_delay ? *o.lock_delay : std::chrono::milliseconds(std::chrono::seconds(15));
}

} // namespace

// Broadcast of one session generation's end: waiters wait on `signal`, which is cancelled once.
struct loss_signal {
    explicit loss_signal(asio::any_io_executor ex) : signal(ex, clock_type::time_point::max()) {}
    asio::steady_timer signal;
    error_code reason;
};

struct session_impl : std::enable_shared_from_this<session_impl> {
    session_impl(std::shared_ptr<client_impl> c, session_options o, request_options r)
        : client(std::move(c)), options(std::move(o)), request(std::move(r)),
          created(client->executor, clock_type::time_point::max()), renew_timer(client->executor),
          watchdog(client->executor)
    {
        // Per call, not per session: a deadline or a diagnostics sink would outlive the call they were for.
        request.timeout = std::chrono::milliseconds(0);
        request.diag = nullptr;
    }

    std::shared_ptr<client_impl> client;
    session_options options;
    request_options request; // datacenter, namespace, partition and token of create, renew and destroy
    // Written on the client's strand only, under `view_mutex`; the public accessors read them from any
    // thread under it too (the strand's own reads need no lock).
    mutable std::mutex view_mutex;
    session_liveness liveness;
    std::optional<session_id> id;
    std::uint64_t generation = 0;
    std::uint64_t epoch = 0; // background loops of an older epoch stop
    error_code last_loss = make_error_code(errc::not_held);
    std::shared_ptr<loss_signal> current;

    // Invariants: `generation` counts sessions created; `epoch` changes whenever the current
    // session ends (lost, closed) or a new one starts, and background loops of another epoch stop;
    // `stops` counts close()/cancel() calls, so a creation that was in flight during one is undone.
    bool creating = false;
    bool closed = false; // the owning object is gone
    std::uint64_t stops = 0;
    std::uint64_t create_attempts = 0;
    error_code last_create_error;
    asio::steady_timer created; // cancelled whenever a creation attempt ends
    asio::steady_timer renew_timer;
    asio::steady_timer watchdog;
    std::uint64_t hook_id = 0;

    // A renew_now() in flight: concurrent callers (e.g. every lock of a shared session noticing at
    // once that its key was freed) share its answer instead of sending one renewal each.
    struct renewal {
        renewal(asio::any_io_executor ex, std::uint64_t e) : done(ex, clock_type::time_point::max()), epoch(e) {}
        asio::steady_timer done;
        std::uint64_t epoch; // of the session it renews: a later session gets a renewal of its own
        error_code ec;
        bool finished = false;

        void finish(error_code e)
        {
            if (finished)
                return;
            ec = e;
            finished = true;
            done.cancel();
        }
    };
    std::shared_ptr<renewal> renewing;

    // `writing(), change();` holds the lock for that one statement.
    std::unique_lock<std::mutex> writing() const { return std::unique_lock<std::mutex>(view_mutex); }

    // The options of one of the session's own writes.
    write_options write_opts() const
    {
        write_options w;
        static_cast<request_options&>(w) = request;
        return w;
    }

    std::string tag() const { return "session " + (id ? id->str() : std::string("(none)")) + " '" + options.name + "'"; }

    // Background coroutines take `self` as a parameter: it is copied into the frame when the
    // coroutine is created, so the state outlives the session object while they run.
    static asio::awaitable<void> create(std::shared_ptr<session_impl> self);
    static asio::awaitable<void> renew_loop(std::shared_ptr<session_impl> self, std::uint64_t my_epoch);
    static asio::awaitable<void> watchdog_loop(std::shared_ptr<session_impl> self, std::uint64_t my_epoch);
    static asio::awaitable<void> destroy(std::shared_ptr<client_impl> c, session_id sid, write_options wo);
    std::optional<errc> check_now()
    {
        auto w = writing();
        return liveness.check(clock_type::now());
    }
    void declare_lost(errc why);
    void end_generation(error_code reason);
    void keep_alive(std::uint64_t my_epoch); // starts the renewal and the watchdog of this epoch
    void keep_alive_failed(std::uint64_t my_epoch);
    void create_failed();
    void destroy_in_background(session_id sid);
    void stop(error_code reason); // local stop + background destroy
};

asio::awaitable<void> session_impl::create(std::shared_ptr<session_impl> self)
{
    auto& s = *self;
    auto& client = s.client;
    auto& options = s.options;
    auto& closed = s.closed;
    const auto stops_at_start = s.stops;
    s.creating = true;
    colock::detail::backoff delays(client->options.backoff_initial, client->options.backoff_max);
    error_code ec;
    session_id new_id;
    clock_type::time_point sent;
    // A create that Consul refused (5xx: no leader, serfHealth critical while the agent boots) is
    // retried; an indeterminate one is not (it may have created a session, which then expires).
    for (unsigned attempt = 1;; ++attempt) {
        client->at_round("session create");
        sent = clock_type::now();
        auto wo = s.write_opts();
        auto [cec, cid] = co_await session_create_body(client, options, std::move(wo));
        ec = cec;
        new_id = std::move(cid);
        if (!ec || closed || attempt >= client->options.max_attempts || !is_retryable(ec) ||
            ec == errc::indeterminate_write)
            break;
        asio::steady_timer t(client->executor, delays.next(colock::detail::unit_random()));
        auto [tec] = co_await t.async_wait(use_tuple);
        if (tec)
            break;
    }
    s.creating = false;
    ++s.create_attempts;
    if (!ec && (closed || s.stops != stops_at_start)) {
        s.destroy_in_background(new_id); // closed, cancelled or destroyed meanwhile: undo
        ec = make_error_code(closed ? errc::client_closed : errc::not_held);
    }
    s.last_create_error = ec;
    if (!ec) {
        auto w = s.writing();
        s.id = new_id;
        ++s.generation;
        ++s.epoch;
        s.liveness.on_created(sent, options.ttl, confirmation_window(options));
        w.unlock();
        s.current = std::make_shared<loss_signal>(client->executor);
        if (options.ttl.count() > 0)
            s.keep_alive(s.epoch);
    }
    s.created.cancel(); // wake every start() waiting for this attempt
}

asio::awaitable<void> session_impl::renew_loop(std::shared_ptr<session_impl> self, std::uint64_t my_epoch)
{
    auto& s = *self;
    auto& epoch = s.epoch;
    auto& liveness = s.liveness;
    auto& renew_timer = s.renew_timer;
    auto& watchdog = s.watchdog;
    auto& client = s.client;
    while (epoch == my_epoch) {
        renew_timer.expires_at(liveness.next_renew(colock::detail::unit_random()));
        co_await renew_timer.async_wait(use_tuple);
        if (epoch != my_epoch)
            co_return;
        client->at_round("session renew");
        if (s.check_now()) {
            s.declare_lost(*liveness.lost_reason());
            co_return;
        }
        const auto sent = clock_type::now();
        auto wo = s.write_opts();
        // A renewal is useless after the deadline: bound its wait by it.
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(liveness.deadline() - sent);
        wo.timeout = std::clamp(left, std::chrono::milliseconds(100), client->options.request_timeout);
        const auto sid = *s.id;
        auto [ec, entry] = co_await session_renew_body(client, sid, wo);
        if (epoch != my_epoch)
            co_return;
        if (!ec) {
            const auto old_ttl = liveness.ttl();
            s.writing(), liveness.on_renewed(sent, entry.ttl);
            if (liveness.ttl() != old_ttl)
                client->info(s.tag() + ": Consul set the TTL to " + std::to_string(liveness.ttl().count()) + " ms");
            client->debug(s.tag() + " renewed");
            watchdog.cancel(); // re-arm at the new deadline
        } else if (ec == errc::session_invalidated) {
            s.writing(), liveness.on_invalidated();
            s.declare_lost(errc::session_invalidated);
            co_return;
        } else {
            s.writing(), liveness.on_renew_failed(clock_type::now());
            client->warn(s.tag() + ": renewal failed (" + ec.message() + "), retrying in " +
                         std::to_string(liveness.retry_interval().count()) + " ms");
        }
    }
}

asio::awaitable<void> session_impl::watchdog_loop(std::shared_ptr<session_impl> self, std::uint64_t my_epoch)
{
    auto& s = *self;
    while (s.epoch == my_epoch) {
        s.watchdog.expires_at(s.liveness.deadline());
        co_await s.watchdog.async_wait(use_tuple);
        if (s.epoch != my_epoch)
            co_return;
        if (auto why = s.check_now()) {
            s.declare_lost(*why);
            co_return;
        }
    }
}

void session_impl::keep_alive(std::uint64_t my_epoch)
{
    auto self = shared_from_this();
    const auto failed = [self, my_epoch] { self->keep_alive_failed(my_epoch); };
    spawn_background(client, tag() + ": renewal", renew_loop(self, my_epoch), failed);
    spawn_background(client, tag() + ": watchdog", watchdog_loop(self, my_epoch), failed);
}

// The renewal or the watchdog threw: nothing keeps the session alive or watches its deadline any more.
// End it (once: the other loop then stops on the new epoch) so its holders see the loss, and destroy
// it so Consul frees its keys; the next start() creates a new one.
void session_impl::keep_alive_failed(std::uint64_t my_epoch)
{
    if (epoch != my_epoch || !id)
        return;
    const auto sid = *id;
    end_generation(make_error_code(errc::internal_error));
    destroy_in_background(sid);
}

// The creation threw: wake every start() waiting for it with internal_error (undoing a session it made).
void session_impl::create_failed()
{
    creating = false;
    ++create_attempts;
    last_create_error = make_error_code(errc::internal_error);
    if (id) {
        const auto sid = *id;
        end_generation(last_create_error);
        destroy_in_background(sid);
    }
    created.cancel();
}

void session_impl::end_generation(error_code reason)
{
    ++epoch;
    renew_timer.cancel();
    watchdog.cancel();
    renewing.reset(); // its callers still get its answer; new ones ask about the next session
    writing(), id.reset();
    last_loss = reason;
    if (current) {
        current->reason = reason;
        current->signal.cancel();
        current.reset();
    }
}

void session_impl::declare_lost(errc why)
{
    if (!id)
        return;
    const auto sid = *id;
    client->warn(tag() + " lost: " + make_error_code(why).message());
    end_generation(make_error_code(why));
    // Expired by our own deadline: Consul may still have it (network trouble); destroy it so its
    // locks are freed as soon as Consul hears from us. Invalidated: already gone.
    if (why == errc::session_expired)
        destroy_in_background(sid);
}

asio::awaitable<void> session_impl::destroy(std::shared_ptr<client_impl> c, session_id sid, write_options wo)
{
    auto [ec, ok] = co_await session_destroy_body(c, sid, std::move(wo));
    if (ec)
        c->warn("session " + sid.str() + ": destroy failed (" + ec.message() + "); it expires with its TTL");
    else
        c->info("session " + sid.str() + " destroyed");
}

void session_impl::destroy_in_background(session_id sid)
{
    // Nobody waits on it: an exception is only logged (the session expires with its TTL).
    spawn_background(client, "destroy of session " + sid.str(), destroy(client, sid, write_opts()), [] {});
}

void session_impl::stop(error_code reason)
{
    ++stops;
    writing(), liveness.on_closed();
    if (id) {
        const auto sid = *id;
        end_generation(reason);
        destroy_in_background(sid);
    }
}

namespace {

asio::awaitable<std::tuple<error_code, session_id>> start_body(std::shared_ptr<session_impl> s)
{
    for (;;) {
        if (s->closed)
            co_return std::tuple{make_error_code(errc::client_closed), session_id{}};
        if (s->id) {
            // The clock decides, not only the watchdog: after a stall its handler may not have run yet.
            if (auto why = s->check_now())
                s->declare_lost(*why);
            else
                co_return std::tuple{error_code{}, *s->id};
        }
        const auto attempt = s->create_attempts;
        if (!s->creating) { // in the background: a cancelled caller must not abort it for the others
            s->creating = true;
            spawn_background(s->client, s->tag() + ": creation", session_impl::create(s), [s] { s->create_failed(); });
        }
        // co_spawn may have run the whole creation already (a failure before any I/O).
        if (s->create_attempts == attempt)
            co_await s->created.async_wait(use_tuple);
        auto cs = co_await asio::this_coro::cancellation_state;
        if (cs.cancelled() != asio::cancellation_type::none)
            co_return std::tuple{make_error_code(asio::error::operation_aborted), session_id{}};
        if (s->create_attempts != attempt && s->last_create_error)
            co_return std::tuple{s->last_create_error, session_id{}};
    }
}

// The renewal behind renew_now(), shared by every caller that asks while it runs; registered with
// the client (client::cancel() ends it) but not cancelled with any caller.
asio::awaitable<std::tuple<error_code>> shared_renewal(std::shared_ptr<session_impl> s,
                                                       std::shared_ptr<session_impl::renewal> mine, session_id sid)
{
    struct always_finish { // whatever happens, every waiter gets an answer
        session_impl::renewal& r;
        ~always_finish() { r.finish(make_error_code(asio::error::operation_aborted)); }
    } guard{*mine};
    const auto sent = clock_type::now();
    auto wo = s->write_opts();
    auto [ec, entry] = co_await session_renew_body(s->client, sid, std::move(wo));
    if (s->renewing == mine)
        s->renewing.reset();
    if (s->epoch != mine->epoch) { // ended (or replaced) meanwhile
        ec = ec ? ec : make_error_code(errc::not_held);
    } else if (!ec) {
        s->writing(), s->liveness.on_renewed(sent, entry.ttl);
        s->watchdog.cancel(); // re-arm at the new deadline
    } else if (ec == errc::session_invalidated) {
        s->writing(), s->liveness.on_invalidated();
        s->declare_lost(errc::session_invalidated);
    }
    mine->finish(ec);
    co_return std::tuple{ec};
}

asio::awaitable<std::tuple<error_code>> renew_now_body(std::shared_ptr<session_impl> s)
{
    if (!s->id)
        co_return std::tuple{make_error_code(errc::not_held)};
    auto renewal = s->renewing;
    if (!renewal || renewal->epoch != s->epoch) {
        renewal = std::make_shared<session_impl::renewal>(s->client->executor, s->epoch);
        s->renewing = renewal;
        auto nobody = [](error_code) {}; // the callers wait on `renewal`
        launch(s->client, shared_renewal(s, renewal, *s->id), asio::any_completion_handler<void(error_code)>(nobody));
    }
    if (!renewal->finished)
        co_await renewal->done.async_wait(use_tuple);
    if (!renewal->finished) // only our wait was cancelled
        co_return std::tuple{make_error_code(asio::error::operation_aborted)};
    co_return std::tuple{renewal->ec};
}

asio::awaitable<std::tuple<error_code>> close_body(std::shared_ptr<session_impl> s)
{
    ++s->stops;
    s->writing(), s->liveness.on_closed();
    if (!s->id)
        co_return std::tuple{error_code{}};
    const auto sid = *s->id;
    s->end_generation(make_error_code(errc::not_held));
    auto wo = s->write_opts();
    auto [ec, ok] = co_await session_destroy_body(s->client, sid, std::move(wo));
    if (!ec)
        s->client->info("session " + sid.str() + " destroyed");
    co_return std::tuple{ec};
}

} // namespace
} // namespace colock::consul::detail

namespace colock::consul {

namespace asio = boost::asio;

session::session(client& c, session_options opts, request_options request)
    : session(c.impl(), std::move(opts), std::move(request))
{
}

session::session(const std::shared_ptr<detail::client_impl>& c, session_options opts, request_options request)
    : executor_(c->user_executor),
      impl_(std::make_shared<detail::session_impl>(c, std::move(opts), std::move(request)))
{
    std::weak_ptr<detail::session_impl> weak = impl_;
    impl_->hook_id = impl_->client->add_cancel_hook([weak] {
        if (auto s = weak.lock())
            s->stop(make_error_code(asio::error::operation_aborted));
    });
}

session::~session()
{
    impl_->client->remove_cancel_hook(impl_->hook_id);
    // On the strand (at once when already there): stop renewing, destroy the session in the background.
    asio::dispatch(impl_->client->executor, [s = impl_] {
        s->closed = true;
        s->stop(make_error_code(errc::not_held));
        s->created.cancel();
    });
}

void session::start_impl(asio::any_completion_handler<void(error_code, session_id)> h)
{
    detail::launch(impl_->client, detail::start_body(impl_), std::move(h));
}

void session::lost_impl(asio::any_completion_handler<void(error_code)> h)
{
    auto& strand = impl_->client->executor;
    auto ex = asio::get_associated_executor(h, executor_);
    // (A new variable: Boost 1.81's any_completion_handler move assignment recurses forever.)
    auto on_strand = colock::detail::cancellable_on(strand, executor_, std::move(h));
    asio::dispatch(strand, [s = impl_, ex, h = std::move(on_strand)]() mutable {
        if (!s->current || !s->id) {
            asio::post(s->client->user_executor, asio::append(std::move(h), s->last_loss));
            return;
        }
        auto signal = s->current;
        auto slot = asio::get_associated_cancellation_slot(h);
        signal->signal.async_wait(asio::bind_cancellation_slot(
            slot, asio::bind_executor(ex, [signal, h = std::move(h)](error_code ec) mutable {
                std::move(h)(signal->reason ? signal->reason : (ec ? ec : make_error_code(asio::error::operation_aborted)));
            })));
    });
}

void session::renew_now_impl(asio::any_completion_handler<void(error_code)> h)
{
    detail::launch(impl_->client, detail::renew_now_body(impl_), std::move(h));
}

void session::close_impl(asio::any_completion_handler<void(error_code)> h)
{
    detail::launch(impl_->client, detail::close_body(impl_), std::move(h));
}

// The accessors read under the session's view_mutex: safe from any thread.
std::optional<session_id> session::id() const noexcept
{
    std::lock_guard guard(impl_->view_mutex);
    return impl_->id;
}
bool session::is_live() const noexcept
{
    std::lock_guard guard(impl_->view_mutex);
    return impl_->id.has_value() && impl_->liveness.live() && clock::now() < impl_->liveness.deadline();
}
std::uint64_t session::generation() const noexcept
{
    std::lock_guard guard(impl_->view_mutex);
    return impl_->generation;
}
session::clock::time_point session::deadline() const noexcept
{
    std::lock_guard guard(impl_->view_mutex);
    const bool live = impl_->id.has_value() && impl_->liveness.live() && clock::now() < impl_->liveness.deadline();
    return live ? impl_->liveness.deadline() : clock::time_point::min();
}
std::chrono::milliseconds session::ttl() const noexcept
{
    std::lock_guard guard(impl_->view_mutex);
    return impl_->liveness.ttl();
}
std::chrono::milliseconds session::trust_window() const noexcept
{
    std::lock_guard guard(impl_->view_mutex);
    return impl_->liveness.window();
}
const session_options& session::options() const noexcept { return impl_->options; }
const request_options& session::request() const noexcept { return impl_->request; }
void session::set_safety_margin(std::chrono::milliseconds margin) noexcept
{
    std::lock_guard guard(impl_->view_mutex);
    impl_->liveness.set_margin(margin);
}

} // namespace colock::consul
