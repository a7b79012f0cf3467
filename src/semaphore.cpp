// colock::semaphore: the async driver around semaphore_acquisition (the decisions of acquiring) and
// semaphore_record (of holding and withdrawing): the prefix followed through the client's watch
// service (while waiting for a slot, and consistently while held), and a wait on the session's loss.

#include <colock/consul/session.hpp>
#include <colock/semaphore.hpp>

#include "consul/background.hpp"
#include "consul/client_impl.hpp"
#include "consul/op.hpp"
#include "consul/ops.hpp"
#include "consul/watch_service.hpp"
#include "detail/backoff.hpp"
#include "recipes/hold_support.hpp"
#include "sansio/semaphore_acquisition.hpp"
#include "sansio/semaphore_record.hpp"

#include <boost/asio/dispatch.hpp>

#include <algorithm>

namespace colock::detail {

namespace asio = boost::asio;
using consul::detail::client_impl;
using consul::detail::key_view;
using consul::detail::watch_interest;
using std::chrono::milliseconds;

namespace {

// As for locks: holds shorter than this never open a blocking query (the session's fail-safe
// deadline guards the hold meanwhile).
constexpr milliseconds hold_watch_delay{25};

// Attempts of a withdrawal (release) before giving up; lost check-and-set races are bounded apart.
constexpr unsigned withdraw_attempts = 4;
constexpr unsigned withdraw_races = 32;

std::string trimmed(std::string prefix)
{
    while (!prefix.empty() && prefix.back() == '/')
        prefix.pop_back();
    return prefix;
}

} // namespace

struct semaphore_impl final : consul::detail::closable, std::enable_shared_from_this<semaphore_impl> {
    semaphore_impl(consul::client& c, std::string p, std::uint32_t l, semaphore_options o)
        : cimpl(c.impl()), prefix(trimmed(std::move(p))), limit(l), options(std::move(o))
    {
    }

    // Everything below is touched on the client's strand only, but `view`, which the accessors read.
    std::shared_ptr<client_impl> cimpl;
    std::string prefix;
    std::uint32_t limit;
    semaphore_options options;
    bool closed = false; // the semaphore object is gone

    enum class phase { idle, acquiring, held };
    phase state = phase::idle;
    std::uint64_t token = 0;
    std::optional<consul::session_id> sid;
    consul::session* sess = nullptr;           // the session of the current hold
    std::unique_ptr<consul::session> own;      // semaphore-owned (semaphore_options::session is null)
    std::optional<consul::kv_entry> record;    // the last known `.lock` while held (for release)
    std::optional<consul::kv_entry> own_write; // the record as our last write of it left it (value, index)
    std::shared_ptr<release_done> withdrawing; // a background withdrawal the next acquire waits for
    std::unique_ptr<consul::detail::watch_service::subscription> monitor; // the hold's watch of the prefix
    operation_stop session_wait; // its wait on sess->lost()
    std::uint64_t hold_epoch = 0;
    std::shared_ptr<hold_end> end;
    error_code last_end = make_error_code(errc::not_held);
    std::weak_ptr<consul::detail::op_registration> acquire_reg; // the pending acquire: ~semaphore stops it
    bool acquire_pending = false;
    published_hold view;

    void publish() { view.publish(hold_view{state == phase::held, token, state == phase::held ? 1u : 0u, 0, sid, sess}); }

    std::string tag() const { return "semaphore '" + prefix + "'"; }
    std::string dir() const { return prefix + '/'; }
    std::string record_key() const { return prefix + "/.lock"; }
    std::string contender_key(const consul::session_id& id) const { return dir() + id.str(); }

    consul::write_options write_opts() const { return recipe_write_options(options.request); }
    consul::query_options query_opts() const { return recipe_query_options(options.request); }

    // The caller's session (refused with errc::session_mismatch when it was made for another place or
    // token than our requests), else our own one, made with our request options.
    consul::session* session_for_acquire(error_code& ec)
    {
        if (options.session) {
            const auto mismatch = request_mismatch(options.session->request(), options.request, cimpl->options);
            if (!mismatch.empty()) {
                cimpl->warn(tag() + ": the given session does not match the semaphore's request options: " + mismatch);
                ec = make_error_code(errc::session_mismatch);
                return nullptr;
            }
            return options.session;
        }
        if (!own)
            own = std::make_unique<consul::session>(cimpl, options.own_session, options.request);
        return own.get();
    }

    void become_held(consul::session& s, const consul::session_id& id, consul::kv_entry rec);
    void on_monitor(std::uint64_t epoch, const key_view& v);
    void on_snapshot(std::uint64_t epoch, const semaphore_snapshot& snap);
    void on_lost(std::uint64_t epoch, error_code reason);
    void end_hold(error_code reason);
    void withdraw_in_background(consul::session_id id, std::optional<consul::kv_entry> known,
                                std::unique_ptr<consul::session> retire, std::shared_ptr<release_done> done);
    // Ends the hold and gives the slot back in the background (release(), destruction).
    void release_in_background(std::unique_ptr<consul::session> retire, std::shared_ptr<release_done> done);
    asio::awaitable<error_code> close_holds() override;
};

asio::awaitable<error_code> semaphore_impl::close_holds()
{
    stop_acquire(*this);
    std::shared_ptr<release_done> done;
    if (state == phase::held) { // the slot goes back, then our own session ends
        done = std::make_shared<release_done>(cimpl->executor);
        release_in_background(std::move(own), done);
    } else if (!acquire_pending) {
        own.reset(); // an idle semaphore keeps its session for the next acquire; close() ends it
    }
    return release_outcome(std::move(done));
}

namespace {

using op_bool = std::tuple<error_code, bool>;

// Takes `sid` out of the semaphore: removes it from the record (check-and-set, re-reading after a
// lost race) and deletes its contender key, in one transaction. `known` is the record as last seen
// (saves a read when it is current).
asio::awaitable<std::tuple<error_code>> withdraw(std::shared_ptr<semaphore_impl> self, consul::session_id sid,
                                                 std::optional<consul::kv_entry> known)
{
    auto& s = *self;
    colock::detail::backoff delays(s.options.retry_initial, s.options.retry_max);
    error_code last;
    bool current = known.has_value(); // `known` is as Consul has it now: no read needed
    std::optional<consul::kv_entry> rec = std::move(known);
    unsigned races = 0;
    for (unsigned failures = 0; failures < withdraw_attempts;) {
        if (!current) {
            auto q = s.query_opts();
            q.consistency = consul::consistency_mode::consistent;
            auto [gec, got] = co_await consul::detail::kv_get_body(s.cimpl, s.record_key(), q);
            if (gec) {
                last = gec;
                ++failures;
                if (!is_retryable(gec))
                    break;
                asio::steady_timer pause(s.cimpl->executor, delays.next(unit_random()));
                co_await pause.async_wait(use_tuple);
                continue;
            }
            rec = std::move(got.entry); // empty: no record, only our contender key to delete
            current = true;
        }
        std::vector<consul::txn_op> ops;
        auto removal = semaphore_record_without(rec, s.limit, sid.str());
        if (removal)
            ops.push_back(consul::txn_op::cas(s.record_key(), removal->record, removal->cas_index, semaphore_flags));
        ops.push_back(consul::txn_op::delete_key(s.contender_key(sid)));
        auto [ec, r] = co_await consul::detail::txn_body(s.cimpl, std::move(ops), s.write_opts());
        current = false;
        if (!ec && r.committed) {
            if (removal && !r.results.empty()) { // what the next acquire can build on
                s.own_write = r.results.front();
                s.own_write->value = std::move(removal->record);
                s.own_write->flags = semaphore_flags;
            }
            co_return std::tuple{error_code{}};
        }
        if (!ec) {
            last = semaphore_rollback_error(r);
            if (!last && ++races < withdraw_races)
                continue; // the record changed since we read it: read it again
            if (!last)
                last = make_error_code(errc::conflict); // the record never held still
            break; // refused (e.g. an ACL): asking again will not help
        }
        last = ec;
        ++failures;
        if (ec != errc::indeterminate_write && ec != errc::request_timeout && !is_retryable(ec))
            break;
        asio::steady_timer pause(s.cimpl->executor, delays.next(unit_random()));
        co_await pause.async_wait(use_tuple);
    }
    s.cimpl->warn(s.tag() + ": could not give the slot back (" + last.message() + ")");
    co_return std::tuple{last};
}

// A withdrawal nobody waits for, which reports to `done` and then lets `retire` (a session the
// semaphore no longer uses) be destroyed: destroying a `delete` session removes its contender key.
asio::awaitable<void> withdraw_task(std::shared_ptr<semaphore_impl> self, consul::session_id sid,
                                    std::optional<consul::kv_entry> known, std::unique_ptr<consul::session> retire,
                                    std::shared_ptr<release_done> done)
{
    auto [ec] = co_await withdraw(self, std::move(sid), std::move(known));
    if (ec && !retire && self->own && !self->options.session) {
        // Ending our own session frees the slot as surely (its contender key goes, others prune it).
        retire = std::move(self->own);
    }
    retire.reset();
    done->report(ec);
}

} // namespace

void semaphore_impl::become_held(consul::session& s, const consul::session_id& id, consul::kv_entry rec)
{
    state = phase::held;
    token = rec.modify_index;
    sid = id;
    sess = &s;
    record = std::move(rec);
    const auto epoch = ++hold_epoch;
    end = std::make_shared<hold_end>(cimpl->executor);
    publish();
    if (cimpl->log.enabled(logger::level::debug))
        cimpl->debug(tag() + " acquired, fencing token " + std::to_string(token));

    std::weak_ptr<semaphore_impl> weak = shared_from_this();
    watch_interest interest;
    interest.consistent = true;
    interest.poll_interval = hold_poll_interval(&s);
    interest.start_delay = hold_watch_delay;
    monitor = cimpl->watches().subscribe_prefix(dir(), options.request, interest, [weak, epoch](const key_view& v) {
        if (auto self = weak.lock())
            self->on_monitor(epoch, v);
    });
    if (!session_still_live(&s, id)) { // lost (or replaced) before we could listen
        on_lost(epoch, make_error_code(errc::session_expired));
        return;
    }
    s.lost(session_wait.bind([weak, epoch](error_code ec) {
        if (auto self = weak.lock())
            self->on_lost(epoch, ec);
    }));
}

void semaphore_impl::on_monitor(std::uint64_t epoch, const key_view& v)
{
    if (epoch != hold_epoch || state != phase::held)
        return;
    if (v.error) {
        // Transient failures are retried by the watch; the session's deadline bounds how long we
        // trust the hold meanwhile. A permanent one (e.g. 403) leaves the slot unverifiable.
        if (v.error == asio::error::operation_aborted || !is_retryable(v.error))
            on_lost(epoch, v.error);
        return;
    }
    if (v.known)
        on_snapshot(epoch, make_semaphore_snapshot(v.entries, prefix));
}

void semaphore_impl::on_snapshot(std::uint64_t epoch, const semaphore_snapshot& snap)
{
    if (epoch != hold_epoch || state != phase::held)
        return;
    if (snap.record_entry && snap.record_entry->modify_index < token)
        return; // news from before this hold
    switch (check_semaphore_hold(snap, limit, sid->str())) {
    case semaphore_hold::held:
        record = snap.record_entry;
        return;
    case semaphore_hold::lost:
        on_lost(epoch, make_error_code(errc::lock_lost));
        return;
    case semaphore_hold::unreadable: // replaced by something that is not our semaphore's record
        on_lost(epoch, make_error_code(errc::conflict));
        return;
    }
}

void semaphore_impl::on_lost(std::uint64_t epoch, error_code reason)
{
    if (epoch != hold_epoch || state != phase::held)
        return;
    cimpl->warn(tag() + " lost: " + reason.message());
    const auto id = *sid;
    end_hold(reason);
    // Free whatever is left (our record entry, our contender key) so the slot goes to others now,
    // then end a semaphore-owned session: the next acquire starts a fresh one.
    auto done = std::make_shared<release_done>(cimpl->executor);
    withdraw_in_background(id, std::nullopt, std::move(own), done);
}

void semaphore_impl::end_hold(error_code reason)
{
    ++hold_epoch;
    state = phase::idle;
    token = 0;
    sess = nullptr;
    sid.reset();
    publish(); // before a semaphore-owned session can be destroyed: accessors read it
    record.reset();
    monitor.reset();
    session_wait.emit();
    last_end = reason;
    if (end) {
        end->finish(reason);
        end.reset();
    }
}

void semaphore_impl::withdraw_in_background(consul::session_id id, std::optional<consul::kv_entry> known,
                                            std::unique_ptr<consul::session> retire, std::shared_ptr<release_done> done)
{
    withdrawing = done;
    // If it throws, the release() or acquire waiting on `done` hears internal_error.
    auto task = withdraw_task(shared_from_this(), std::move(id), std::move(known), std::move(retire), done);
    consul::detail::spawn_background(cimpl, tag() + ": withdrawal", std::move(task),
                                     [done] { done->report(make_error_code(errc::internal_error)); });
}

void semaphore_impl::release_in_background(std::unique_ptr<consul::session> retire, std::shared_ptr<release_done> done)
{
    const auto id = *sid;
    auto known = record;
    end_hold(make_error_code(errc::not_held));
    withdraw_in_background(id, std::move(known), std::move(retire), std::move(done));
}

namespace {

// A record write with us in it committed: hold the slot, or undo it when the acquisition was
// cancelled meanwhile (never leave a slot held by accident).
asio::awaitable<op_bool> hold_written(std::shared_ptr<semaphore_impl> self, consul::session& sess, consul::session_id sid,
                                      consul::kv_entry written)
{
    auto& s = *self;
    s.own_write = written;
    auto cs = co_await asio::this_coro::cancellation_state;
    if (cancelled(cs) || s.closed) {
        auto [uec] = co_await uncancellable(withdraw(self, sid, std::move(written)));
        (void)uec;
        co_return op_bool{make_error_code(asio::error::operation_aborted), false};
    }
    s.become_held(sess, sid, std::move(written));
    if (s.state != semaphore_impl::phase::held)
        co_return op_bool{make_error_code(errc::session_expired), false};
    co_return op_bool{error_code{}, true};
}

// A round begins with one of these steps: the acquisition stops there when cancelled. The writes
// that follow a decision are not abandoned, and every backoff ends in a new round.
bool begins_round(semaphore_step step)
{
    return step == semaphore_step::write_quick || step == semaphore_step::write_contender ||
           step == semaphore_step::list || step == semaphore_step::wait_change;
}

// The acquisition: session, then the steps of semaphore_acquisition until held or done.
asio::awaitable<op_bool> acquire_body(std::shared_ptr<semaphore_impl> self, bool try_once)
{
    auto& s = *self;
    auto start_state = co_await asio::this_coro::cancellation_state;
    if (s.closed || cancelled(start_state))
        co_return op_bool{make_error_code(asio::error::operation_aborted), false};
    if (s.state == semaphore_impl::phase::held)
        co_return op_bool{make_error_code(errc::already_held), false};
    if (s.prefix.empty() || s.limit == 0)
        co_return op_bool{make_error_code(errc::invalid_argument), false};
    s.state = semaphore_impl::phase::acquiring;
    struct reset_phase {
        semaphore_impl& s;
        ~reset_phase()
        {
            if (s.state == semaphore_impl::phase::acquiring)
                s.state = semaphore_impl::phase::idle;
        }
    } reset{s};

    // A withdrawal still running deletes the same contender key we are about to write: let it finish.
    if (auto pending = s.withdrawing; pending && !pending->finished) {
        auto [wec] = co_await wait_for(pending);
        auto cs = co_await asio::this_coro::cancellation_state;
        if (wec == asio::error::operation_aborted || cancelled(cs) || s.closed)
            co_return op_bool{make_error_code(asio::error::operation_aborted), false};
    }

    error_code session_ec;
    auto* chosen = s.session_for_acquire(session_ec);
    if (!chosen)
        co_return op_bool{session_ec, false};
    auto& sess = *chosen;
    consul::session_id sid;
    if (sess.is_live() && sess.id()) {
        sid = *sess.id();
    } else {
        auto [sec, started] = co_await sess.start(use_tuple);
        if (sec)
            co_return op_bool{sec, false};
        sid = std::move(started);
    }

    semaphore_acquisition_params params;
    params.prefix = s.prefix;
    params.limit = s.limit;
    params.value = s.options.value;
    params.try_once = try_once;
    params.max_consecutive_errors = s.options.max_consecutive_errors;
    params.retry_initial = s.options.retry_initial;
    params.retry_max = s.options.retry_max;
    semaphore_acquisition plan(std::move(params), std::move(sid));
    plan.start(s.own_write);

    consul::detail::change_waiter watching(s.cimpl->executor);
    asio::steady_timer pause(s.cimpl->executor);
    error_code result;

    for (bool done = false; !done;) {
        const auto step = plan.next();
        if (begins_round(step)) {
            auto cs = co_await asio::this_coro::cancellation_state;
            if (cancelled(cs) || s.closed) {
                result = make_error_code(asio::error::operation_aborted);
                break;
            }
        }
        switch (step) {
        case semaphore_step::write_quick:
        case semaphore_step::write_record: {
            if (step == semaphore_step::write_quick)
                s.own_write.reset(); // the plan has used it: one try
            auto ops = plan.ops();
            auto wo = s.write_opts();
            // Not abandoned on cancellation: its outcome decides whether we hold a slot.
            auto [wec, wr] = co_await uncancellable(consul::detail::txn_body(s.cimpl, std::move(ops), wo));
            plan.on_write(wec, wr);
            break;
        }
        case semaphore_step::write_contender: {
            s.own_write.reset(); // the plan has used it, or found no room in it: one try
            auto ops = plan.ops();
            auto wo = s.write_opts();
            auto [ec, r] = co_await consul::detail::txn_body(s.cimpl, std::move(ops), wo);
            if (ec == asio::error::operation_aborted)
                plan.on_abandoned(ec);
            else
                plan.on_write(ec, r);
            break;
        }
        case semaphore_step::list: {
            auto q = s.query_opts();
            const bool resolving = plan.consistent_list();
            if (resolving)
                q.consistency = consul::consistency_mode::consistent;
            std::tuple<error_code, consul::kv_list_result> read;
            if (resolving) // (no `?:` around co_await: GCC 12 destroys the result twice)
                read = co_await uncancellable(consul::detail::kv_list_body(s.cimpl, s.dir(), q));
            else
                read = co_await consul::detail::kv_list_body(s.cimpl, s.dir(), q);
            auto& [lec, lr] = read;
            if (lec == asio::error::operation_aborted)
                plan.on_abandoned(lec);
            else
                plan.on_list(lec, std::move(lr.entries), lr.meta.index);
            break;
        }
        case semaphore_step::wait_change: {
            // The prefix after its next change: the watch service's blocking query (or its polling,
            // beyond the client's watch budget), shared with this client's other users of the prefix.
            if (!watching.following()) {
                std::optional<key_view> seed;
                if (plan.listed()) {
                    seed.emplace();
                    seed->known = true;
                    seed->entries = plan.listing();
                    seed->index = plan.listing_index();
                }
                watch_interest interest;
                interest.poll_interval = s.options.poll_interval;
                watching.follow(s.cimpl->watches(), s.dir(), true, s.options.request, interest, seed);
                const auto& current = watching.view();
                if (current.known && !current.error && plan.listed() && current.index != plan.listing_index()) {
                    watching.mark_seen();
                    plan.on_change({}, current.entries, current.index); // the watch knows better already
                    break;
                }
            }
            const key_view* v = co_await watching.next();
            if (!v)
                break; // cancelled: the next round's check ends it
            if (v->error == asio::error::operation_aborted) // client::cancel()
                plan.on_abandoned(v->error);
            else
                plan.on_change(v->error, v->entries, v->index);
            break;
        }
        case semaphore_step::withdraw: {
            auto [wec] = co_await uncancellable(withdraw(self, plan.session(), std::nullopt));
            plan.on_withdrawn(wec, s.own_write);
            break;
        }
        case semaphore_step::renew_session: {
            // Ask Consul (a 404 ends the session), then continue with a live one.
            auto [nec] = co_await sess.renew_now(use_tuple);
            if (nec == asio::error::operation_aborted) {
                plan.on_abandoned(nec);
                break;
            }
            auto [rec, rsid] = co_await sess.start(use_tuple);
            plan.on_session(rec, rsid);
            break;
        }
        case semaphore_step::backoff: {
            pause.expires_after(plan.delay(unit_random()));
            co_await pause.async_wait(use_tuple);
            plan.on_backoff_done();
            break;
        }
        case semaphore_step::held:
            co_return co_await hold_written(self, sess, plan.session(), plan.held_record());
        case semaphore_step::not_acquired:
            done = true;
            break;
        case semaphore_step::failed:
            result = plan.error();
            if (auto record_limit = plan.conflicting_limit())
                s.cimpl->warn(s.tag() + ": limit conflict (record: " + std::to_string(*record_limit) +
                              ", ours: " + std::to_string(s.limit) + ")");
            done = true;
            break;
        }
    }

    // Not held: leave nothing behind (our contender key; our record entry if a write of unknown outcome won).
    if (plan.withdraw_needed()) {
        auto [wec] = co_await uncancellable(withdraw(self, plan.session(), std::nullopt));
        (void)wec;
    }
    co_return op_bool{result, false};
}

asio::awaitable<std::tuple<error_code>> acquire_only_body(std::shared_ptr<semaphore_impl> self)
{
    auto [ec, held] = co_await acquire_body(std::move(self), false);
    if (!ec && !held) // cannot happen without try_once; never report success without a slot
        ec = make_error_code(errc::not_held);
    co_return std::tuple{ec};
}

asio::awaitable<std::tuple<error_code>> release_body(std::shared_ptr<semaphore_impl> self)
{
    auto& s = *self;
    if (s.state != semaphore_impl::phase::held)
        co_return std::tuple{make_error_code(errc::not_held)};
    auto done = std::make_shared<release_done>(s.cimpl->executor);
    s.release_in_background(nullptr, done);
    co_return co_await wait_for(done);
}

} // namespace

} // namespace colock::detail

namespace colock {

namespace asio = boost::asio;

semaphore::semaphore(consul::client& c, std::string prefix, std::uint32_t limit, semaphore_options opts)
    : executor_(c.get_executor()),
      impl_(std::make_shared<detail::semaphore_impl>(c, std::move(prefix), limit, std::move(opts)))
{
    impl_->cimpl->add_closable(impl_);
}

semaphore::~semaphore()
{
    // On the strand (at once when already there): a pending acquire stops, a held slot is given back in the
    // background, and then our own session ends.
    asio::dispatch(impl_->cimpl->executor, [impl = impl_] {
        auto& s = *impl;
        s.closed = true;
        detail::stop_acquire(s);
        if (s.state == detail::semaphore_impl::phase::held)
            s.release_in_background(std::move(s.own), std::make_shared<detail::release_done>(s.cimpl->executor));
    });
}

void semaphore::acquire_impl(asio::any_completion_handler<void(error_code)> h)
{
    detail::start_acquire(*impl_, detail::acquire_only_body(impl_), std::move(h));
}

void semaphore::try_acquire_impl(asio::any_completion_handler<void(error_code, bool)> h)
{
    detail::start_acquire(*impl_, detail::acquire_body(impl_, true), std::move(h));
}

void semaphore::release_impl(asio::any_completion_handler<void(error_code)> h)
{
    consul::detail::launch(impl_->cimpl, detail::release_body(impl_), std::move(h));
}

void semaphore::lost_impl(asio::any_completion_handler<void(error_code, error_code)> h)
{
    detail::lost_on_strand(impl_, executor_, std::move(h));
}

// The accessors read the hold as the strand last published it: safe from any thread.
bool semaphore::is_held() const noexcept { return impl_->view.read().live; }

std::uint64_t semaphore::fencing_token() const noexcept { return impl_->view.read().token; }

std::optional<consul::session_id> semaphore::session_id() const noexcept { return impl_->view.read().sid; }

semaphore::clock::time_point semaphore::deadline() const noexcept { return impl_->view.read().deadline; }

const std::string& semaphore::prefix() const noexcept { return impl_->prefix; }

std::uint32_t semaphore::limit() const noexcept { return impl_->limit; }

const semaphore_options& semaphore::options() const noexcept { return impl_->options; }

} // namespace colock
