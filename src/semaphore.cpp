// colock::semaphore: the async driver around semaphore_record (the decisions): contender key,
// check-and-set of the `.lock` record, the prefix followed through the client's watch service (while
// waiting for a slot, and consistently while held), and a wait on the session's loss.

#include <colock/consul/session.hpp>
#include <colock/semaphore.hpp>

#include "consul/background.hpp"
#include "consul/client_impl.hpp"
#include "consul/op.hpp"
#include "consul/ops.hpp"
#include "consul/watch_service.hpp"
#include "detail/backoff.hpp"
#include "recipes/hold_support.hpp"
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
                                      consul::kv_entry written, std::string record)
{
    auto& s = *self;
    written.value = std::move(record); // Consul does not echo the value
    written.flags = semaphore_flags;
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

// The acquisition: session, contender key, then the decisions of semaphore_record until held or done.
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

    colock::detail::backoff delays(s.options.retry_initial, s.options.retry_max);
    unsigned failures = 0;
    error_code result;
    bool contender = false;     // our contender key may exist
    bool contender_ok = false;  // ... and is known to
    bool resolve = false;       // a record write of unknown outcome: read consistently
    bool wait_for_change = false; // every slot was taken: wait for the prefix to change
    std::optional<semaphore_snapshot> snap;
    std::optional<key_view> seen; // the prefix as the last read listed it (the watch's seed)
    consul::detail::change_waiter watching(s.cimpl->executor);
    asio::steady_timer pause(s.cimpl->executor);

    const auto listed = [&](std::vector<consul::kv_entry> entries, std::uint64_t index) {
        snap = make_semaphore_snapshot(entries, s.prefix);
        seen.emplace();
        seen->known = true;
        seen->entries = std::move(entries);
        seen->index = index;
    };

    // One more failed request: true when acquire() should give up with it.
    const auto failed = [&](error_code ec) {
        result = ec;
        ++failures;
        return s.options.max_consecutive_errors != 0 && failures >= s.options.max_consecutive_errors;
    };

    for (;;) {
        auto cs = co_await asio::this_coro::cancellation_state;
        if (cancelled(cs) || s.closed) {
            result = make_error_code(asio::error::operation_aborted);
            break;
        }
        if (!contender_ok && s.own_write) {
            // 0. Quick path: contender key and slot in one transaction, from what our last write left.
            auto quick = decide_from_own_write(*s.own_write, s.limit, sid.str());
            s.own_write.reset(); // one try: a stale view costs only this transaction
            if (quick) {
                std::vector<consul::txn_op> ops{
                    consul::txn_op::lock(s.contender_key(sid), sid, s.options.value, semaphore_flags),
                    consul::txn_op::cas(s.record_key(), quick->record, quick->cas_index, semaphore_flags)};
                contender = true;
                auto [qec, qr] = co_await uncancellable(consul::detail::txn_body(s.cimpl, std::move(ops), s.write_opts()));
                if (!qec && qr.committed && qr.results.size() >= 2)
                    co_return co_await hold_written(self, sess, sid, qr.results[1], std::move(quick->record));
                if (qec) { // unknown outcome: the prefix, read consistently, will tell (we may be in the record)
                    resolve = true;
                    if (failed(qec))
                        break;
                }
                continue; // rolled back: the record changed (or our session is in doubt); the full path follows
            }
        }
        if (!contender_ok) {
            // 1. Our contender key, and in the same transaction a look at the whole prefix.
            std::vector<consul::txn_op> ops{consul::txn_op::lock(s.contender_key(sid), sid, s.options.value, semaphore_flags),
                                            consul::txn_op::get_tree(s.dir())};
            contender = true;
            auto [ec, r] = co_await consul::detail::txn_body(s.cimpl, std::move(ops), s.write_opts());
            if (ec == asio::error::operation_aborted) {
                result = ec;
                break;
            }
            if (!ec && r.committed && !r.results.empty()) {
                contender_ok = true;
                // Read by the leader in the write (resolves too), as of the write's index: our key's.
                std::vector<consul::kv_entry> tree(r.results.begin() + 1, r.results.end());
                std::uint64_t index = 0;
                for (const auto& x : tree)
                    index = std::max(index, x.modify_index);
                listed(std::move(tree), index);
                resolve = false;
                failures = 0;
            } else if (!ec && semaphore_rollback_error(r) == make_http_error(403)) {
                result = make_http_error(403); // an ACL denies our contender key
                break;
            } else if (!ec) {
                // Rolled back: a key named after our session cannot be held by another one, so our
                // session is in doubt. Ask Consul (a 404 ends it) and continue with a live one.
                if (failed(make_error_code(errc::conflict)))
                    break;
                auto [nec] = co_await sess.renew_now(use_tuple);
                if (nec == asio::error::operation_aborted) {
                    result = nec;
                    break;
                }
                auto [rec, rsid] = co_await sess.start(use_tuple);
                if (rec) {
                    result = rec;
                    break;
                }
                if (rsid == sid) { // the same live session: not a session problem, back off
                    pause.expires_after(delays.next(unit_random()));
                    co_await pause.async_wait(use_tuple);
                }
                sid = std::move(rsid);
                continue;
            } else {
                if (failed(ec) || (!is_retryable(ec) && ec != errc::indeterminate_write && ec != errc::request_timeout))
                    break;
                pause.expires_after(delays.next(unit_random()));
                co_await pause.async_wait(use_tuple);
                continue;
            }
        }
        if (!snap && wait_for_change && !resolve) {
            // 2a. The prefix after its next change: the watch service's blocking query (or its polling,
            // beyond the client's watch budget), shared with this client's other users of the prefix.
            if (!watching.following()) {
                watch_interest interest;
                interest.poll_interval = s.options.poll_interval;
                watching.follow(s.cimpl->watches(), s.dir(), true, s.options.request, interest, seen);
                const auto& current = watching.view();
                if (current.known && !current.error && seen && current.index != seen->index) {
                    listed(current.entries, current.index); // the watch knows better already
                    watching.mark_seen();
                }
            }
            if (!snap) {
                const key_view* v = co_await watching.next();
                if (!v)
                    continue; // cancelled: the loop's top ends it
                if (v->error == asio::error::operation_aborted) { // client::cancel()
                    result = v->error;
                    break;
                }
                if (v->error) { // the watch retries; we read the prefix ourselves after a pause
                    if (failed(v->error) || !is_retryable(v->error))
                        break;
                    wait_for_change = false;
                    pause.expires_after(delays.next(unit_random()));
                    co_await pause.async_wait(use_tuple);
                    continue;
                }
                failures = 0;
                listed(v->entries, v->index);
            }
        }
        if (!snap) {
            // 2b. The prefix as it is now (consistently when a write's outcome is unknown).
            auto q = s.query_opts();
            if (resolve)
                q.consistency = consul::consistency_mode::consistent;
            std::tuple<error_code, consul::kv_list_result> read;
            if (resolve) // (no `?:` around co_await: GCC 12 destroys the result twice)
                read = co_await uncancellable(consul::detail::kv_list_body(s.cimpl, s.dir(), q));
            else
                read = co_await consul::detail::kv_list_body(s.cimpl, s.dir(), q);
            auto& [lec, lr] = read;
            if (lec == asio::error::operation_aborted) {
                result = lec;
                break;
            }
            if (lec) {
                if (failed(lec) || !is_retryable(lec))
                    break;
                pause.expires_after(delays.next(unit_random()));
                co_await pause.async_wait(use_tuple);
                continue;
            }
            failures = 0;
            resolve = false;
            listed(std::move(lr.entries), lr.meta.index);
        }

        // 3. Decide.
        const auto d = decide_semaphore_acquire(*snap, s.limit, sid.str());
        snap.reset();
        wait_for_change = d.what == semaphore_decision::kind::wait;
        if (d.what == semaphore_decision::kind::failed) {
            result = d.error;
            if (d.error == errc::limit_conflict)
                s.cimpl->warn(s.tag() + ": limit conflict (record: " + std::to_string(d.record_limit) +
                              ", ours: " + std::to_string(s.limit) + ")");
            break;
        }
        if (d.what == semaphore_decision::kind::wait) {
            if (try_once) {
                result = {};
                break;
            }
            continue; // until the prefix changes
        }
        if (d.what == semaphore_decision::kind::already_holder) {
            // An earlier write of unknown outcome won. Take it out and start over: a fresh write
            // gives a fresh fencing token (that one may be shared with a later holder's).
            auto [wec] = co_await uncancellable(withdraw(self, sid, std::nullopt));
            contender_ok = false;
            if (wec && failed(wec))
                break;
            continue;
        }
        // take: check-and-set the record with us in it.
        std::vector<consul::txn_op> ops{consul::txn_op::cas(s.record_key(), d.record, d.cas_index, semaphore_flags)};
        auto [wec, wr] = co_await uncancellable(consul::detail::txn_body(s.cimpl, std::move(ops), s.write_opts()));
        if (!wec && wr.committed && !wr.results.empty())
            co_return co_await hold_written(self, sess, sid, wr.results.front(), d.record);
        if (!wec) { // (the next round lists the prefix again at once)
            const auto why = semaphore_rollback_error(wr);
            if (!why)
                continue; // raced with another contender
            if (failed(why) || why == make_http_error(403))
                break;
            pause.expires_after(delays.next(unit_random()));
            co_await pause.async_wait(use_tuple);
            continue;
        }
        if (wec == errc::indeterminate_write || wec == errc::request_timeout)
            resolve = true;
        if (failed(wec) || (!resolve && !is_retryable(wec)))
            break;
        pause.expires_after(delays.next(unit_random()));
        co_await pause.async_wait(use_tuple);
    }

    // Not held: leave nothing behind (our contender key; our record entry if a write of unknown outcome won).
    if (contender) {
        auto [wec] = co_await uncancellable(withdraw(self, sid, std::nullopt));
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
