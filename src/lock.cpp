// colock::lock: the async driver around lock_acquisition (the decisions) plus the hold: a monitor
// subscription on the client's watch service, a wait on the session's loss, and loss fan-out.

#include <colock/consul/session.hpp>
#include <colock/lock.hpp>

#include "consul/background.hpp"
#include "consul/client_impl.hpp"
#include "consul/op.hpp"
#include "consul/ops.hpp"
#include "consul/watch_service.hpp"
#include "detail/backoff.hpp"
#include "recipes/acquiring_write.hpp"
#include "recipes/hold_support.hpp"
#include "recipes/local_queue.hpp"
#include "sansio/lock_acquisition.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>

#include <mutex>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace colock::detail {

namespace asio = boost::asio;
using consul::detail::client_impl;
using consul::detail::key_view;
using consul::detail::watch_interest;
using consul::detail::watch_service;
using std::chrono::milliseconds;
using clock_type = std::chrono::steady_clock;

namespace {

// A held key's first watch query waits this long: holds shorter than this never open a blocking
// query (an abandoned one keeps a connection slot busy on the agent for about 2 s). The session's
// fail-safe deadline guards the hold meanwhile.
constexpr milliseconds hold_watch_delay{25};

} // namespace

struct lock_impl final : consul::detail::closable, std::enable_shared_from_this<lock_impl> {
    lock_impl(consul::client& c, std::string k, lock_options o)
        : cimpl(c.impl()), key(std::move(k)), options(std::move(o)), options_view(options)
    {
    }

    // Everything below is touched on the client's strand only, but `view` and `options_view`, which
    // the accessors read.
    std::shared_ptr<client_impl> cimpl;
    std::string key;
    lock_options options;
    mutable std::mutex options_mutex;
    lock_options options_view; // what options() returns (set_value() writes it at once)
    bool closed = false; // the lock object is gone

    enum class phase { idle, acquiring, held };
    phase state = phase::idle;
    unsigned count = 0;
    std::uint64_t token = 0;
    std::optional<consul::session_id> sid;
    consul::session* sess = nullptr; // the session of the current hold
    std::unique_ptr<consul::session> own; // a lock-owned session (lock_options::own_session)
    std::shared_ptr<consul::session> shared; // the client's shared session, once used
    std::unique_ptr<local_turn> turn;
    std::unique_ptr<watch_service::subscription> monitor;
    operation_stop session_wait; // our wait on sess->lost()
    std::uint64_t hold_epoch = 0;
    std::shared_ptr<hold_end> end;
    error_code last_end = make_error_code(errc::not_held); // why the last hold ended
    std::weak_ptr<consul::detail::op_registration> acquire_reg; // the pending acquire: ~lock stops it
    bool acquire_pending = false;
    published_hold view;

    void publish()
    {
        view.publish(hold_view{state == phase::held, token, count, lock_index, sid, sess});
    }

    local_queue& memory() { return cimpl->local_locks(); } // the client's knowledge of keys

    std::string tag() const { return "lock '" + key + "'"; }
    // The Consul key this lock acquires, for local turns and key memory: the same key in another
    // datacenter, namespace or partition is another key; two spellings of one place are one.
    // Set by each acquire (client_impl::place_of), before the local turn.
    std::string place_key;
    const std::string& identity() const { return place_key; }
    std::uint64_t lock_index = 0; // of the current hold: another acquisition changes it

    consul::write_options write_opts() const { return recipe_write_options(options.request); }
    consul::query_options query_opts() const { return recipe_query_options(options.request); }

    // The session to acquire with: the caller's (refused with errc::session_mismatch when it was made
    // for another place or token than our requests), a lock-owned one (`own_session`, or the shared
    // session's settings when our requests go elsewhere than the client's defaults), else the shared one.
    consul::session* session_for_acquire(error_code& ec)
    {
        const auto& copts = cimpl->options;
        if (options.session) {
            const auto mismatch = request_mismatch(options.session->request(), options.request, copts);
            if (!mismatch.empty()) {
                cimpl->warn(tag() + ": the given session does not match the lock's request options: " + mismatch);
                ec = make_error_code(errc::session_mismatch);
                return nullptr;
            }
            return options.session;
        }
        const bool elsewhere = !request_mismatch(consul::request_options{}, options.request, copts).empty();
        if (options.own_session || elsewhere) {
            if (!own)
                own = std::make_unique<consul::session>(cimpl, options.own_session.value_or(copts.shared_session),
                                                        options.request);
            return own.get();
        }
        if (!shared)
            shared = cimpl->shared_session();
        return shared.get();
    }

    void become_held(consul::session& s, const consul::session_id& id, std::uint64_t fencing, const consul::kv_entry& entry,
                     std::unique_ptr<local_turn> t);
    void on_monitor(std::uint64_t epoch, const key_view& v);
    void on_lost(std::uint64_t epoch, error_code reason);
    void end_hold(error_code reason);
    void release_in_background(std::shared_ptr<release_done> done);
    asio::awaitable<error_code> close_holds() override;
};

asio::awaitable<error_code> lock_impl::close_holds()
{
    stop_acquire(*this);
    std::shared_ptr<release_done> done;
    if (state == phase::held) { // every hold of a reentrant lock
        done = std::make_shared<release_done>(cimpl->executor);
        release_in_background(done);
    }
    return release_outcome(std::move(done));
}

namespace {

using op_bool = std::tuple<error_code, bool>;

// Unlocks the key held by `sid` (writing the value and the lock flags), retrying what is safe to
// retry. Completes with not_held when the key was not ours any more.
asio::awaitable<std::tuple<error_code, std::optional<consul::kv_entry>>>
unlock_key(std::shared_ptr<client_impl> c, std::string key, consul::session_id sid, std::string value,
           consul::write_options wo, milliseconds retry_initial, milliseconds retry_max)
{
    colock::detail::backoff delays(retry_initial, retry_max);
    bool maybe_applied = false;
    error_code last;
    for (unsigned attempt = 1; attempt <= 4; ++attempt) {
        std::vector<consul::txn_op> ops{consul::txn_op::unlock(key, sid, value, lock_flags)};
        auto [ec, r] = co_await consul::detail::txn_body(c, std::move(ops), wo);
        if (!ec && r.committed && !r.results.empty())
            co_return std::tuple{error_code{}, std::optional<consul::kv_entry>(r.results.back())};
        if (!ec && !r.committed) // not held by `sid`: lost meanwhile, or our earlier attempt did it
            co_return std::tuple{maybe_applied ? error_code{} : make_error_code(errc::not_held),
                                 std::optional<consul::kv_entry>{}};
        if (!ec)
            co_return std::tuple{make_error_code(errc::bad_response), std::optional<consul::kv_entry>{}};
        last = ec;
        if (ec == errc::indeterminate_write || ec == errc::request_timeout)
            maybe_applied = true;
        else if (!is_retryable(ec))
            break;
        asio::steady_timer pause(c->executor, delays.next(unit_random()));
        co_await pause.async_wait(use_tuple);
    }
    co_return std::tuple{last, std::optional<consul::kv_entry>{}};
}

// How long a release that keeps failing (e.g. the agent unreachable) is retried in the background
// after the caller has been told. It also ends when the session does: Consul then frees the key.
constexpr std::chrono::minutes background_release_limit{5};

// Releases a hold that its lock object no longer tracks (release(), destruction, a cancelled or
// failed acquire whose write may have won). Keeps the local turn and a lock-owned session until the
// key is free. `done`, if any, learns the outcome of the first round of attempts.
asio::awaitable<void> release_task(std::shared_ptr<lock_impl> self, consul::session_id sid,
                                   std::unique_ptr<local_turn> turn, std::unique_ptr<consul::session> own,
                                   std::shared_ptr<release_done> done)
{
    auto& s = *self;
    const auto report = [&done](error_code ec) {
        if (done)
            done->report(ec);
    };
    const auto give_up_at = clock_type::now() + background_release_limit;
    const auto cancellations = s.cimpl->cancellations(); // client::cancel() or its destruction ends the retries
    for (bool warned = false;;) {
        s.cimpl->at_round("lock release");
        auto [ec, entry] = co_await unlock_key(s.cimpl, s.key, sid, s.options.value, s.write_opts(),
                                               s.options.retry_initial, s.options.retry_max);
        if (!ec && entry) {
            const auto index = entry->modify_index;
            s.memory().remember(s.identity(), std::move(entry), index);
        } else {
            s.memory().forget(s.identity());
        }
        const bool transient = ec == errc::indeterminate_write || ec == errc::request_timeout || is_retryable(ec);
        const bool session_over = own && !own->is_live();
        const bool client_stopped = s.cimpl->cancellations() != cancellations;
        if (!ec || ec == errc::not_held || !transient || session_over || client_stopped ||
            clock_type::now() >= give_up_at) {
            if (ec && ec != errc::not_held)
                s.cimpl->warn(s.tag() + ": release failed (" + ec.message() + ")" +
                              (own ? "; destroying its session" : "; the key stays held until the session ends"));
            report(ec);
            break;
        }
        // Still ours as far as we know: the caller hears now, the key is freed as soon as Consul answers.
        report(ec);
        if (!warned)
            s.cimpl->warn(s.tag() + ": release failed (" + ec.message() + "); retrying in the background");
        warned = true;
        asio::steady_timer pause(s.cimpl->executor, std::max(s.options.retry_max, milliseconds(500)));
        co_await pause.async_wait(use_tuple);
    }
    // A lock-owned session is destroyed once the key is released (or could not be): destroying it
    // first would impose lock-delay on the next holder.
    own.reset();
    turn.reset();
}

// Starts release_task in the background. If it throws, `done` (the release() or acquire waiting on
// it) hears internal_error; the local turn and a lock-owned session go with the task's frame.
void spawn_release(std::shared_ptr<lock_impl> self, consul::session_id sid, std::unique_ptr<local_turn> turn,
                   std::unique_ptr<consul::session> own, std::shared_ptr<release_done> done)
{
    auto cimpl = self->cimpl;
    auto what = self->tag() + ": release";
    auto task = release_task(std::move(self), std::move(sid), std::move(turn), std::move(own), done);
    consul::detail::spawn_background(cimpl, std::move(what), std::move(task), [done] {
        if (done)
            done->report(make_error_code(errc::internal_error));
    });
}

// Unlocks what an acquisition that ends without the lock may have locked (an unlock by a non-holder
// is rolled back, harmlessly), and waits for the first round of attempts: never leave it held. A
// cancelled acquisition waits only until its stop deadline; the release goes on in the background,
// keeping the local turn until the key is free.
asio::awaitable<void> let_go(std::shared_ptr<lock_impl> self, consul::session_id id, std::unique_ptr<local_turn> turn,
                             std::optional<clock_type::time_point> deadline = std::nullopt)
{
    auto done = std::make_shared<release_done>(self->cimpl->executor);
    spawn_release(self, id, std::move(turn), std::move(self->own), done);
    if (deadline)
        (void)co_await wait_until(done, *deadline);
    else
        co_await uncancellable(wait_for(done));
}

// A cancelled acquisition stopped waiting for its write: if the write wins after all, the cleanup
// releases the key, with the local turn and a lock-owned session kept until then.
void release_if_it_wins(const std::shared_ptr<acquiring_write>& write, std::shared_ptr<lock_impl> self,
                        consul::session_id sid, std::unique_ptr<local_turn> turn, std::unique_ptr<consul::session> own)
{
    struct kept {
        std::unique_ptr<local_turn> turn;
        std::unique_ptr<consul::session> own;
    };
    auto leftovers = std::make_shared<kept>(kept{std::move(turn), std::move(own)});
    write->cleanup = [self = std::move(self), sid = std::move(sid), leftovers](const acquiring_write::outcome& o) {
        if (may_have_won(o))
            spawn_release(self, sid, std::move(leftovers->turn), std::move(leftovers->own), nullptr);
    };
}

} // namespace

void lock_impl::become_held(consul::session& s, const consul::session_id& id, std::uint64_t fencing,
                            const consul::kv_entry& entry, std::unique_ptr<local_turn> t)
{
    state = phase::held;
    count = 1;
    token = fencing;
    sid = id;
    sess = &s;
    turn = std::move(t);
    const auto epoch = ++hold_epoch;
    end = std::make_shared<hold_end>(cimpl->executor);
    memory().remember(identity(), entry, fencing);
    lock_index = entry.lock_index;
    publish();
    if (cimpl->log.enabled(logger::level::debug))
        cimpl->debug(tag() + " acquired, fencing token " + std::to_string(fencing));

    std::weak_ptr<lock_impl> weak = shared_from_this();
    key_view seed;
    seed.known = true;
    seed.entry = entry;
    seed.index = fencing;
    watch_interest interest;
    interest.consistent = true;
    interest.poll_interval = hold_poll_interval(&s);
    interest.start_delay = hold_watch_delay;
    monitor = cimpl->watches().subscribe(
        key, options.request, interest,
        [weak, epoch](const key_view& v) {
            if (auto self = weak.lock())
                self->on_monitor(epoch, v);
        },
        seed);

    if (!session_still_live(&s, id)) { // lost (or replaced) before we could listen
        on_lost(epoch, make_error_code(errc::session_expired));
        return;
    }
    s.lost(session_wait.bind([weak, epoch](error_code ec) {
        if (auto self = weak.lock())
            self->on_lost(epoch, ec);
    }));
}

void lock_impl::on_monitor(std::uint64_t epoch, const key_view& v)
{
    if (epoch != hold_epoch || state != phase::held)
        return;
    if (v.error) {
        // Transient failures are retried by the watch; the session's deadline bounds how long we
        // trust the hold meanwhile. A permanent one (e.g. 403) leaves ownership unverifiable.
        if (v.error == asio::error::operation_aborted || !is_retryable(v.error))
            on_lost(epoch, v.error);
        return;
    }
    if (!v.known || (v.entry && v.entry->modify_index < token))
        return; // nothing yet, or news from before this hold
    // Not ours any more; or ours, but acquired again since (another lock object on the same
    // session, e.g. in another client, took it over: LockIndex counts acquisitions).
    if (!v.entry || !v.entry->session || *v.entry->session != *sid || v.entry->lock_index != lock_index) {
        // Taken from us without our release: often because Consul ended the session (destroyed,
        // expired, a failed check; the key may already be someone else's or, with delete behaviour,
        // gone). A shared or caller's session would only learn that at its next renewal: ask now
        // (concurrent asks share one renewal), so that the next acquisition and the session's other
        // holds need not find out by a refused write.
        consul::session* ask = !own ? sess : nullptr;
        on_lost(epoch, make_error_code(errc::lock_lost));
        if (ask)
            ask->renew_now(asio::detached);
        return;
    }
    memory().remember(identity(), v.entry, v.index);
}

void lock_impl::on_lost(std::uint64_t epoch, error_code reason)
{
    if (epoch != hold_epoch || state != phase::held)
        return;
    cimpl->warn(tag() + " lost: " + reason.message());
    const auto id = *sid;
    const bool unverifiable = reason != errc::lock_lost && reason != errc::session_invalidated &&
                              reason != errc::session_expired && reason != asio::error::operation_aborted;
    memory().forget(identity());
    end_hold(reason);
    if (unverifiable) {
        // We can no longer tell whether Consul still has our session in the key: let it go (best effort).
        spawn_release(shared_from_this(), id, std::move(turn), std::move(own), nullptr);
        return;
    }
    turn.reset();
    own.reset(); // a lock-owned session has nothing left to hold: destroy it (in the background)
}

void lock_impl::end_hold(error_code reason)
{
    ++hold_epoch;
    state = phase::idle;
    count = 0;
    token = 0;
    sess = nullptr;
    sid.reset();
    publish(); // before a lock-owned session can be destroyed: accessors read it
    monitor.reset();
    session_wait.emit();
    last_end = reason;
    if (end) {
        end->finish(reason);
        end.reset();
    }
}

namespace {

// The acquisition: local turn, session, then the decisions of lock_acquisition until held or done.
asio::awaitable<op_bool> acquire_body(std::shared_ptr<lock_impl> self, bool try_once)
{
    auto& s = *self;
    auto start_state = co_await asio::this_coro::cancellation_state;
    if (s.closed || cancelled(start_state)) // ~lock or a cancellation before the body ran
        co_return op_bool{make_error_code(asio::error::operation_aborted), false};
    if (s.state == lock_impl::phase::held) {
        if (!s.options.reentrant)
            co_return op_bool{make_error_code(errc::already_held), false};
        if (!session_still_live(s.sess, *s.sid)) // past the deadline: no new claims
            co_return op_bool{make_error_code(errc::session_expired), false};
        ++s.count;
        s.publish();
        co_return op_bool{error_code{}, true};
    }
    s.state = lock_impl::phase::acquiring;
    struct reset_phase {
        lock_impl& s;
        ~reset_phase()
        {
            if (s.state == lock_impl::phase::acquiring) {
                s.state = lock_impl::phase::idle;
                s.own.reset(); // a lock-owned session is not kept without the lock
            }
        }
    } reset{s};
    auto& queue = s.cimpl->local_locks();

    // 1. This client's turn for the key: lock objects sharing a session must not both "hold" it.
    s.place_key = co_await s.cimpl->place_of(s.options.request) + '\x1f' + s.key;
    if (s.closed || cancelled(start_state)) // it may have asked the agent
        co_return op_bool{make_error_code(asio::error::operation_aborted), false};
    const auto identity = s.place_key;
    auto turn = queue.try_enter(identity);
    if (!turn) {
        if (try_once)
            co_return op_bool{error_code{}, false};
        auto [tec, t] = co_await queue.enter(identity);
        if (tec)
            co_return op_bool{tec, false};
        turn = std::move(t);
    }

    // 2. A live session.
    error_code session_ec;
    auto* chosen = s.session_for_acquire(session_ec);
    if (!chosen)
        co_return op_bool{session_ec, false};
    auto& sess = *chosen;
    consul::session_id sid;
    if (sess.is_live() && sess.id()) {
        sid = *sess.id(); // the usual case: no round trip through the executor
    } else {
        auto [sec, started] = co_await sess.start(use_tuple);
        if (sec)
            co_return op_bool{sec, false};
        sid = std::move(started);
    }

    // 3. The decisions.
    lock_acquisition_params params;
    params.key = s.key;
    params.value = s.options.value;
    params.flags = lock_flags;
    params.try_once = try_once;
    params.max_consecutive_errors = s.options.max_consecutive_errors;
    lock_acquisition plan(std::move(params), sid);
    plan.set_backoff(s.options.retry_initial, s.options.retry_max, s.options.lock_delay_retry_max);
    if (auto known = queue.recall(identity))
        plan.start(std::optional<std::optional<consul::kv_entry>>(std::move(known->entry)), known->index);
    else
        plan.start(std::nullopt, 0);

    consul::detail::change_waiter watching(s.cimpl->executor);
    asio::steady_timer pause(s.cimpl->executor);
    // A cancelled acquisition completes within `grace` of noticing it: see lock.hpp.
    stop_deadline stop_at;
    const auto grace = s.cimpl->options.request_timeout;

    for (;;) {
        switch (plan.next()) {
        case acquire_step::write: {
            auto ops = plan.ops();
            auto wo = s.write_opts();
            if (s.cimpl->log.enabled(logger::level::debug))
                s.cimpl->debug(s.tag() + ": write (" + std::to_string(ops.size()) + " operations)");
            // Not abandoned on cancellation: its outcome decides whether we must release. But waited
            // for only until the stop deadline; then the cleanup takes over.
            auto write = start_acquiring_write(s.cimpl, s.tag() + ": acquiring write", std::move(ops), std::move(wo));
            const bool known = co_await outcome_of(write, stop_at, grace);
            if (!known) {
                release_if_it_wins(write, self, plan.session(), std::move(turn), std::move(s.own));
                co_return op_bool{make_error_code(asio::error::operation_aborted), false};
            }
            const auto& [wec, wr] = *write->result;
            plan.on_write(wec, wr);
            break;
        }
        case acquire_step::read: {
            auto q = s.query_opts();
            const bool resolving = plan.consistent_read();
            if (resolving)
                q.consistency = consul::consistency_mode::consistent;
            // (No `?:` around co_await: GCC 12 destroys the result twice.)
            // Cancellable even when it resolves a write of unknown outcome: the stop below then lets go.
            auto [rec, rr] = co_await consul::detail::kv_get_body(s.cimpl, s.key, q);
            if (rec == asio::error::operation_aborted) {
                if (plan.unresolved())
                    co_await let_go(self, plan.session(), std::move(turn), stop_at.noticed(grace));
                co_return op_bool{rec, false};
            }
            plan.on_read(rec, rr.entry, rr.meta.index);
            break;
        }
        case acquire_step::wait_change: {
            if (!watching.following()) {
                std::optional<key_view> seed;
                if (plan.key_known()) {
                    seed.emplace();
                    seed->known = true;
                    seed->entry = plan.key_entry();
                    seed->index = plan.key_index();
                }
                watch_interest interest;
                interest.poll_interval = s.options.poll_interval;
                watching.follow(s.cimpl->watches(), s.key, false, s.options.request, interest, seed);
                const auto& current = watching.view();
                if (current.known && !current.error && current.index != plan.key_index()) {
                    plan.on_change({}, current.entry, current.index); // the watch knows better already
                    break;
                }
            }
            const key_view* v = co_await watching.next();
            if (v)
                plan.on_change(v->error, v->entry, v->index);
            break;
        }
        case acquire_step::backoff: {
            pause.expires_after(plan.delay(unit_random()));
            co_await pause.async_wait(use_tuple);
            plan.on_backoff_done();
            break;
        }
        case acquire_step::renew_session: {
            // Consul refused the session: ask it now (a 404 ends the session), then start a new one if needed.
            auto [nec] = co_await sess.renew_now(use_tuple);
            if (nec == asio::error::operation_aborted)
                co_return op_bool{nec, false};
            auto [rec, rsid] = co_await sess.start(use_tuple);
            plan.on_session(rec, rsid);
            break;
        }
        case acquire_step::held:
            break;
        case acquire_step::not_acquired:
            if (plan.key_known())
                queue.remember(identity, plan.key_entry(), plan.key_index());
            co_return op_bool{error_code{}, false};
        case acquire_step::failed:
            if (plan.unresolved()) { // a write of unknown outcome may hold the key: let it go first
                co_await let_go(self, plan.session(), std::move(turn));
            }
            co_return op_bool{plan.error(), false};
        }

        auto cs = co_await asio::this_coro::cancellation_state;
        const bool stop = cancelled(cs) || s.closed;
        if (plan.next() == acquire_step::held) {
            if (stop) {
                // The write won the race with the cancellation: never leave the lock held.
                co_await let_go(self, plan.session(), std::move(turn), stop_at.noticed(grace));
                co_return op_bool{make_error_code(asio::error::operation_aborted), false};
            }
            if (plan.key_entry())
                s.become_held(sess, plan.session(), plan.token(), *plan.key_entry(), std::move(turn));
            if (s.state != lock_impl::phase::held) // the session ended before the hold could start
                co_return op_bool{make_error_code(errc::session_expired), false};
            co_return op_bool{error_code{}, true};
        }
        if (stop) {
            if (plan.unresolved()) { // a write of unknown outcome may hold the key: let it go first
                co_await let_go(self, plan.session(), std::move(turn), stop_at.noticed(grace));
            }
            co_return op_bool{make_error_code(asio::error::operation_aborted), false};
        }
    }
}

asio::awaitable<std::tuple<error_code>> acquire_only_body(std::shared_ptr<lock_impl> self)
{
    auto [ec, held] = co_await acquire_body(std::move(self), false);
    (void)held;
    co_return std::tuple{ec};
}

asio::awaitable<std::tuple<error_code>> release_body(std::shared_ptr<lock_impl> self)
{
    auto& s = *self;
    if (s.state != lock_impl::phase::held)
        co_return std::tuple{make_error_code(errc::not_held)};
    if (s.count > 1) {
        --s.count;
        s.publish();
        co_return std::tuple{error_code{}};
    }
    auto done = std::make_shared<release_done>(s.cimpl->executor);
    s.release_in_background(done);
    co_return co_await wait_for(done);
}

} // namespace

void lock_impl::release_in_background(std::shared_ptr<release_done> done)
{
    const auto id = *sid;
    auto t = std::move(turn);
    auto o = std::move(own);
    end_hold(make_error_code(errc::not_held));
    spawn_release(shared_from_this(), id, std::move(t), std::move(o), std::move(done));
}

} // namespace colock::detail

namespace colock {

namespace asio = boost::asio;

lock::lock(consul::client& c, std::string key, lock_options opts)
    : executor_(c.get_executor()), impl_(std::make_shared<detail::lock_impl>(c, std::move(key), std::move(opts)))
{
    impl_->cimpl->add_closable(impl_);
}

lock::~lock()
{
    // On the strand (at once when already there): a pending acquire stops, a hold is released in the background.
    asio::dispatch(impl_->cimpl->executor, [impl = impl_] {
        auto& s = *impl;
        s.closed = true;
        detail::stop_acquire(s);
        if (s.state == detail::lock_impl::phase::held)
            s.release_in_background(nullptr);
    });
}

void lock::acquire_impl(asio::any_completion_handler<void(error_code)> h)
{
    detail::start_acquire(*impl_, detail::acquire_only_body(impl_), std::move(h));
}

void lock::try_acquire_impl(asio::any_completion_handler<void(error_code, bool)> h)
{
    detail::start_acquire(*impl_, detail::acquire_body(impl_, true), std::move(h));
}

void lock::release_impl(asio::any_completion_handler<void(error_code)> h)
{
    consul::detail::launch(impl_->cimpl, detail::release_body(impl_), std::move(h));
}

void lock::lost_impl(asio::any_completion_handler<void(error_code, error_code)> h)
{
    detail::lost_on_strand(impl_, executor_, std::move(h));
}

// The accessors read the hold as the strand last published it: safe from any thread.
bool lock::is_held() const noexcept { return impl_->view.read().live; }

std::uint64_t lock::fencing_token() const noexcept { return impl_->view.read().token; }

unsigned lock::hold_count() const noexcept { return impl_->view.read().count; }

std::uint64_t lock::lock_index() const noexcept { return impl_->view.read().lock_index; }

std::optional<consul::session_id> lock::session_id() const noexcept { return impl_->view.read().sid; }

lock::clock::time_point lock::deadline() const noexcept { return impl_->view.read().deadline; }

const std::string& lock::key() const noexcept { return impl_->key; }

lock_options lock::options() const
{
    std::lock_guard guard(impl_->options_mutex);
    return impl_->options_view;
}

void lock::set_value(std::string value)
{
    {
        std::lock_guard guard(impl_->options_mutex);
        impl_->options_view.value = value;
    }
    asio::dispatch(impl_->cimpl->executor, [impl = impl_, v = std::move(value)]() mutable { impl->options.value = std::move(v); });
}

} // namespace colock
