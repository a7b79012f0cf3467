// The client's watch service: one blocking-query loop per key within the budget, one poller that
// verifies the other keys through read-only transactions. See watch_service.hpp.

#include "consul/watch_service.hpp"

#include <colock/consul/index_tracker.hpp>
#include <colock/consul/txn.hpp>

#include "consul/background.hpp"
#include "consul/client_impl.hpp"
#include "consul/ops.hpp"
#include "detail/backoff.hpp"
#include "sansio/txn_rollback.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <deque>
#include <exception>
#include <map>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace colock::consul::detail {

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
// Pace of a key's query loop: a few quick rounds, then at most one query per 100 ms while the
// index churns; after errors, capped exponential backoff.
constexpr unsigned loop_burst = 8;
constexpr milliseconds loop_refill{100};
constexpr milliseconds error_backoff_initial{100};
constexpr milliseconds error_backoff_max{5000};
// A failed poll is retried sooner than the subscribers' interval, but not in a hot loop.
constexpr milliseconds poll_retry{500};
} // namespace

struct watch_subscriber {
    watch_service::callback cb;
    watch_interest interest;
    bool active = true;
};

namespace {
// Requests made with these options can share a transaction; with others, not even a query.
std::string options_identity(const request_options& r)
{
    return r.datacenter + '\x1f' + r.ns + '\x1f' + r.partition + '\x1f' + r.token;
}
} // namespace

struct watch_entry {
    watch_entry(std::string id, std::string k, bool p, const request_options& r, std::uint64_t ord)
        : identity(std::move(id)), key(std::move(k)), prefix(p), request(r), order(ord),
          bucket(loop_burst, loop_refill, clock_type::now()), errors(error_backoff_initial, error_backoff_max)
    {
        request.diag = nullptr;
        request.timeout = std::chrono::milliseconds(0);
    }
    std::string identity; // options + kind + key: the map's key
    std::string key;
    bool prefix; // every key under `key` (a list), not the one key
    request_options request;
    std::uint64_t order; // first come, first promoted
    key_view view;
    std::vector<std::shared_ptr<watch_subscriber>> subs;

    // Blocking mode: a loop runs and holds one slot of the budget until it ends.
    bool blocking = false;
    bool stopping = false;  // the loop was told to end at once (its query is abandoned)
    bool idle = false;      // stopped by client::cancel(): no query until someone subscribes again
    bool client_cancelled = false;
    bool sent_query = false;
    asio::cancellation_signal stop;
    index_tracker tracker;
    colock::detail::token_bucket bucket;
    colock::detail::backoff errors;
    bool failed_last = false;

    // Polled mode.
    clock_type::time_point next_poll{};

    // Bumped when a subscriber seeds a fresher view: an answer to a query sent before that must not
    // overwrite it with older news (a new holder would read its own predecessor's state as a loss).
    std::uint64_t seed_stamp = 0;

    bool wants_consistent() const
    {
        return std::any_of(subs.begin(), subs.end(), [](const auto& s) { return s->interest.consistent; });
    }
    milliseconds poll_interval() const
    {
        milliseconds m{60000};
        for (const auto& s : subs)
            m = std::min(m, s->interest.poll_interval);
        return std::max(m, milliseconds(50));
    }
    bool polled() const { return !blocking && !pending_start && !idle && !subs.empty(); }

    // A new key whose users asked for a start delay: its loop starts at `start_at` (if still wanted).
    bool pending_start = false;
    clock_type::time_point start_at{};
};

namespace {
// Who holds a key: a change of it ends the token bucket's pacing for one query, so a contended
// key is followed at once. For a prefix, any change of its keys (created, deleted, rewritten,
// taken, freed) counts.
bool owners_differ(const key_view& before, const std::optional<kv_entry>& entry, const std::vector<kv_entry>& entries)
{
    const auto holder = [](const kv_entry& x) {
        return std::pair(x.session ? x.session->str() : std::string(), x.lock_index);
    };
    if (before.entry.has_value() != entry.has_value() || (entry && holder(*entry) != holder(*before.entry)))
        return true;
    if (before.entries.size() != entries.size())
        return true;
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const auto& x = entries[i];
        const auto& y = before.entries[i];
        if (x.key != y.key || x.modify_index != y.modify_index || holder(x) != holder(y))
            return true;
    }
    return false;
}

// The largest modify index of a prefix's keys: what a read without a blocking index says of it.
std::uint64_t newest_index(const std::vector<kv_entry>& entries)
{
    std::uint64_t index = 0;
    for (const auto& x : entries)
        index = std::max(index, x.modify_index);
    return index;
}
} // namespace

struct watch_state : std::enable_shared_from_this<watch_state> {
    watch_state(client_impl& c, std::size_t b, milliseconds w)
        : client(&c), budget(std::max<std::size_t>(b, 1)), wait(w), start_timer(c.executor), poll_timer(c.executor)
    {
    }
    client_impl* client; // owns the service; alive while anything here runs (loops hold it)
    std::size_t budget;
    milliseconds wait;
    std::unordered_map<std::string, std::shared_ptr<watch_entry>> entries;
    std::size_t slots_in_use = 0;
    std::uint64_t next_order = 0;
    bool closed = false;
    bool poller_running = false;
    // Keys waiting for their start delay, and the one timer that starts them: a short hold costs
    // no coroutine, no timer and no query.
    std::deque<std::shared_ptr<watch_entry>> pending;
    asio::steady_timer start_timer;
    bool starter_running = false;
    asio::steady_timer poll_timer;
    std::uint64_t poll_txns = 0;
    std::uint64_t hook_id = 0;

    void deliver(watch_entry& e)
    {
        ++e.view.version;
        const auto subs = e.subs; // callbacks may unsubscribe
        const auto view = e.view;
        for (const auto& s : subs)
            if (s->active)
                s->cb(view);
    }

    void erase_if_unused(const std::shared_ptr<watch_entry>& e)
    {
        if (e->subs.empty() && !e->blocking) {
            auto it = entries.find(e->identity);
            if (it != entries.end() && it->second == e)
                entries.erase(it);
        }
    }

    bool polled_waiting() const
    {
        return std::any_of(entries.begin(), entries.end(), [](const auto& kv) { return kv.second->polled(); });
    }

    void start_loop(const std::shared_ptr<watch_entry>& e);
    void loop_ended(const std::shared_ptr<watch_entry>& e);
    void loop_failed(const std::shared_ptr<watch_entry>& e);
    void poller_failed();
    void starter_failed();
    void abandon(const std::shared_ptr<watch_entry>& e);
    void promote();
    void make_room();
    void ensure_poller();
    void start_later(const std::shared_ptr<watch_entry>& e, milliseconds delay);
    void start_due();
    void poll_now(const std::shared_ptr<watch_entry>& e, bool at_once);
};

namespace {

asio::awaitable<void> blocking_loop(std::shared_ptr<watch_state> st, std::shared_ptr<watch_entry> e,
                                    std::shared_ptr<client_impl> c)
{
    co_await asio::this_coro::throw_if_cancelled(false);
    asio::steady_timer pause(c->executor);
    const auto stopped = [&] { return st->closed || e->stopping; };
    bool owner_changed = false; // the last reply showed the key taken, freed, created or deleted
    while (!stopped() && !e->subs.empty()) {
        c->at_round("watch");
        // Space out queries: after an error by backoff; otherwise by the token bucket, except right
        // after a change of the key's owner, so a contended lock is followed at once (else ten times
        // a second at most), while index churn or a key rewritten often cannot drive the loop.
        auto not_before = clock_type::now();
        if (e->failed_last)
            not_before += e->errors.next(colock::detail::unit_random());
        for (;;) {
            const auto now = clock_type::now();
            if (stopped() || (now >= not_before && (owner_changed || e->bucket.try_take(now))))
                break;
            pause.expires_at(now < not_before ? not_before : e->bucket.wait_until());
            co_await pause.async_wait(use_tuple);
        }
        if (stopped() || e->subs.empty())
            break;
        query_options q;
        static_cast<request_options&>(q) = e->request;
        q.index = e->tracker.next_index();
        q.wait = st->wait;
        q.consistency = e->wants_consistent() ? consistency_mode::consistent : consistency_mode::default_mode;
        e->sent_query = true;
        const auto stamp = e->seed_stamp;
        if (c->log.enabled(logger::level::debug))
            c->debug("watch '" + e->key + "': query after index " + std::to_string(q.index) +
                     (q.consistency == consistency_mode::consistent ? " (consistent)" : ""));
        error_code ec;
        std::uint64_t index = 0;
        std::optional<kv_entry> entry;
        std::vector<kv_entry> entries;
        if (e->prefix) {
            auto [lec, listed] = co_await kv_list_body(c, e->key, q);
            ec = lec;
            index = listed.meta.index;
            entries = std::move(listed.entries);
        } else {
            auto [gec, got] = co_await kv_get_body(c, e->key, q);
            ec = gec;
            index = got.meta.index;
            entry = std::move(got.entry);
        }
        if (c->log.enabled(logger::level::debug))
            c->debug("watch '" + e->key + "': " + (ec ? ec.message() : "index " + std::to_string(index)));
        if (stopped() || ec == asio::error::operation_aborted)
            break;
        if (!ec && stamp != e->seed_stamp && index < e->view.index) {
            e->tracker.on_reply(index); // older than the seed: the next query returns at once
            continue;
        }
        if (ec) {
            e->failed_last = true;
            e->view.error = ec;
            st->deliver(*e);
            continue;
        }
        e->failed_last = false;
        e->errors.reset();
        owner_changed = e->view.known && owners_differ(e->view, entry, entries);
        const bool changed = e->tracker.on_reply(index) || e->view.error || !e->view.known;
        if (changed) {
            e->view.known = true;
            e->view.error = {};
            e->view.entry = std::move(entry);
            e->view.entries = std::move(entries);
            e->view.index = index;
            st->deliver(*e);
        }
    }
    st->loop_ended(e);
}

asio::awaitable<void> poll_chunk(std::shared_ptr<watch_state> st, std::shared_ptr<client_impl> c,
                                 std::vector<std::shared_ptr<watch_entry>> left)
{
    const bool consistent = std::any_of(left.begin(), left.end(), [](const auto& e) { return e->wants_consistent(); });
    std::vector<std::uint64_t> stamps;
    for (const auto& e : left)
        stamps.push_back(e->seed_stamp);
    const auto update = [&](const std::shared_ptr<watch_entry>& e, std::optional<kv_entry> entry,
                            std::vector<kv_entry> entries, error_code ec, std::uint64_t stamp) {
        const auto now = clock_type::now();
        if (!e->polled())
            return; // promoted or abandoned meanwhile
        if (stamp != e->seed_stamp) { // seeded with fresher news while we asked: ask again soon
            e->next_poll = now;
            return;
        }
        if (ec) {
            e->view.error = ec;
            e->next_poll = now + std::min(e->poll_interval(), poll_retry);
            st->deliver(*e);
            return;
        }
        const std::uint64_t index = e->prefix ? newest_index(entries) : entry ? entry->modify_index : 0;
        const bool changed = !e->view.known || e->view.error || e->view.index != index ||
                             owners_differ(e->view, entry, entries);
        e->view.known = true;
        e->view.error = {};
        e->view.entry = std::move(entry);
        e->view.entries = std::move(entries);
        e->view.index = index;
        e->next_poll = now + e->poll_interval();
        if (changed)
            st->deliver(*e);
    };
    // `get-or-empty`: a missing key answers an entry with no indexes (a plain `get` would roll the whole
    // transaction back, one missing key at a time); `get-tree` lists a prefix. Results are matched by
    // key: Consul leaves out what the token may not read. A rollback is unexpected here: reported to
    // every key of the chunk.
    std::vector<txn_op> ops;
    ops.reserve(left.size());
    bool lists = false;
    for (const auto& e : left) {
        ops.push_back(e->prefix ? txn_op::get_tree(e->key) : txn_op::get_or_empty(e->key));
        lists = lists || e->prefix;
    }
    write_options wo;
    static_cast<request_options&>(wo) = left.front()->request; // one chunk, one set of options
    auto [ec, result] = co_await txn_body(c, std::move(ops), wo,
                                          consistent ? consistency_mode::consistent : consistency_mode::default_mode);
    ++st->poll_txns;
    if (st->closed)
        co_return;
    if (!ec && !result.committed) {
        using colock::detail::rollback_cause;
        const bool denied = !result.errors.empty() &&
                            colock::detail::classify_rollback(result.errors.front().what) == rollback_cause::permission_denied;
        ec = denied ? make_http_error(403) : make_error_code(errc::bad_response);
    }
    if (!ec && !lists && result.results.size() > left.size())
        ec = make_error_code(errc::bad_response);
    // In key order; a key that both a `get-or-empty` and a `get-tree` read is there once.
    std::map<std::string, kv_entry*> by_key;
    for (auto& r : result.results)
        by_key.emplace(r.key, &r);
    for (std::size_t i = 0; i < left.size(); ++i) {
        const auto& e = left[i];
        if (ec) {
            update(e, std::nullopt, {}, ec, stamps[i]);
        } else if (e->prefix) {
            std::vector<kv_entry> entries;
            for (auto it = by_key.lower_bound(e->key); it != by_key.end() && it->first.starts_with(e->key); ++it)
                if (it->second->modify_index != 0) // not get-or-empty's answer for a missing key
                    entries.push_back(*it->second);
            update(e, std::nullopt, std::move(entries), {}, stamps[i]);
        } else if (const auto found = by_key.find(e->key); found == by_key.end()) {
            update(e, std::nullopt, {}, make_http_error(403), stamps[i]); // filtered out: the token may not read it
        } else if (found->second->modify_index == 0) { // get-or-empty's answer for a missing key
            update(e, std::nullopt, {}, {}, stamps[i]);
        } else {
            update(e, *found->second, {}, {}, stamps[i]);
        }
    }
}

asio::awaitable<void> poll_loop(std::shared_ptr<watch_state> st, std::shared_ptr<client_impl> c)
{
    co_await asio::this_coro::throw_if_cancelled(false);
    // Started from a subscribe(): let the caller's other subscriptions of this turn join the first
    // transaction (co_spawn would run up to the first request inline).
    co_await asio::post(c->executor, asio::use_awaitable);
    while (!st->closed) {
        c->at_round("watch poll");
        std::vector<std::shared_ptr<watch_entry>> polled;
        for (const auto& [key, e] : st->entries)
            if (e->polled())
                polled.push_back(e);
        if (polled.empty())
            break;
        std::sort(polled.begin(), polled.end(), [](const auto& a, const auto& b) { return a->next_poll < b->next_poll; });
        const auto now = clock_type::now();
        if (polled.front()->next_poll > now) {
            st->poll_timer.expires_at(polled.front()->next_poll);
            co_await st->poll_timer.async_wait(use_tuple); // cancelled to poll a new key at once
            continue;
        }
        // Keys due soon ride along with those due now: fewer, fuller transactions (one per set of
        // request options: keys read with different tokens or datacenters never share one).
        std::map<std::string, std::vector<std::shared_ptr<watch_entry>>> due;
        for (const auto& e : polled)
            if (e->next_poll <= now + e->poll_interval() / 4)
                due[options_identity(e->request)].push_back(e);
        for (auto& [options, group] : due) {
            for (std::size_t first = 0; first < group.size() && !st->closed; first += max_txn_operations) {
                const auto last = std::min(group.size(), first + max_txn_operations);
                std::vector<std::shared_ptr<watch_entry>> chunk(group.begin() + static_cast<std::ptrdiff_t>(first),
                                                                group.begin() + static_cast<std::ptrdiff_t>(last));
                co_await poll_chunk(st, c, std::move(chunk));
            }
        }
    }
    st->poller_running = false;
}

asio::awaitable<void> start_runner(std::shared_ptr<watch_state> st)
{
    co_await asio::this_coro::throw_if_cancelled(false);
    while (!st->closed && !st->pending.empty()) {
        const auto first = std::min_element(st->pending.begin(), st->pending.end(), [](const auto& a, const auto& b) {
                               return a->start_at < b->start_at;
                           })->get()->start_at;
        if (first > clock_type::now()) {
            st->start_timer.expires_at(first);
            co_await st->start_timer.async_wait(use_tuple);
            continue;
        }
        st->start_due();
    }
    st->starter_running = false;
}

} // namespace

void watch_state::start_later(const std::shared_ptr<watch_entry>& e, milliseconds delay)
{
    e->pending_start = true;
    e->start_at = clock_type::now() + delay;
    pending.push_back(e);
    if (!starter_running) {
        starter_running = true;
        spawn_background(client->shared_from_this(), "the watch starter", start_runner(shared_from_this()),
                         [st = shared_from_this()] { st->starter_failed(); });
    } else if (e->start_at < start_timer.expiry()) {
        start_timer.cancel(); // re-plan with the earlier start
    }
}

void watch_state::start_due()
{
    const auto now = clock_type::now();
    std::deque<std::shared_ptr<watch_entry>> later;
    auto due = std::move(pending);
    pending.clear();
    for (auto& e : due) {
        if (!e->pending_start)
            continue;
        if (e->start_at > now) {
            later.push_back(std::move(e));
            continue;
        }
        e->pending_start = false;
        if (e->subs.empty() || e->idle) {
            erase_if_unused(e); // the hold ended before its watch was needed
        } else if (!e->blocking) {
            if (slots_in_use < budget) {
                start_loop(e);
            } else {
                poll_now(e, false);
                make_room(); // a draining query may give its slot to this key
            }
        }
    }
    for (auto& e : later)
        pending.push_back(std::move(e));
}

void watch_state::start_loop(const std::shared_ptr<watch_entry>& e)
{
    e->blocking = true;
    e->stopping = false;
    e->sent_query = false;
    e->failed_last = false;
    e->tracker.reset();
    if (e->view.known && e->view.index != 0 && !e->view.error)
        e->tracker.on_reply(e->view.index); // continue from what is known: the first query blocks
    ++slots_in_use;
    // The handler keeps the entry, hence its stop signal, alive until the loop's slot is cleared.
    auto done = background_completion(client->shared_from_this(), "the watch of '" + e->key + "'",
                                      [st = shared_from_this(), e] { st->loop_failed(e); });
    asio::co_spawn(client->executor, blocking_loop(shared_from_this(), e, client->shared_from_this()),
                   asio::bind_cancellation_slot(e->stop.slot(), std::move(done)));
}

void watch_state::loop_ended(const std::shared_ptr<watch_entry>& e)
{
    e->blocking = false;
    --slots_in_use;
    if (closed)
        return;
    if (e->client_cancelled && !e->subs.empty())
        e->idle = true; // client::cancel(): stays quiet until subscribed again
    e->stopping = false;
    e->client_cancelled = false;
    if (!e->subs.empty() && !e->idle) {
        // Still wanted (e.g. the subscribers came back while it drained): keep following it.
        if (slots_in_use < budget)
            start_loop(e);
        else
            poll_now(e, false);
    }
    erase_if_unused(e);
    promote();
}

// The key's loop threw: give its slot back (unless loop_ended() did, and threw itself) and tell
// its subscribers.
void watch_state::loop_failed(const std::shared_ptr<watch_entry>& e)
{
    if (e->blocking) {
        e->blocking = false;
        --slots_in_use;
    }
    if (closed)
        return;
    abandon(e);
    promote();
}

// The poller threw: the keys it verified will not be read again; tell their subscribers.
void watch_state::poller_failed()
{
    poller_running = false;
    if (closed)
        return;
    std::vector<std::shared_ptr<watch_entry>> polled;
    for (const auto& [key, e] : entries)
        if (e->polled())
            polled.push_back(e);
    for (const auto& e : polled)
        abandon(e);
}

// The start runner threw: the keys waiting for their start delay will not start; tell their subscribers.
void watch_state::starter_failed()
{
    starter_running = false;
    auto waiting = std::move(pending);
    pending.clear();
    if (closed)
        return;
    for (const auto& e : waiting) {
        if (e->pending_start) {
            e->pending_start = false;
            abandon(e);
        }
    }
}

// Drops `e` from the service and delivers internal_error to its subscribers: they stop waiting on a
// watch that will never answer again. Whoever subscribes to the key next gets a fresh entry.
void watch_state::abandon(const std::shared_ptr<watch_entry>& e)
{
    auto it = entries.find(e->identity);
    if (it != entries.end() && it->second == e)
        entries.erase(it);
    e->idle = true; // never polled nor restarted
    e->view.error = make_error_code(errc::internal_error);
    deliver(*e);
}

void watch_state::promote()
{
    while (!closed && slots_in_use < budget) {
        std::shared_ptr<watch_entry> first;
        for (const auto& [key, e] : entries)
            if (e->polled() && (!first || e->order < first->order))
                first = e;
        if (!first)
            return;
        start_loop(first);
    }
}

void watch_state::make_room()
{
    // Keys without users whose query is still in flight (draining) give their slot to keys that need one.
    if (slots_in_use < budget || !polled_waiting())
        return;
    for (const auto& [key, e] : entries)
        if (e->blocking && e->subs.empty() && !e->stopping) {
            e->stopping = true;
            e->stop.emit(asio::cancellation_type::terminal);
            return;
        }
}

void watch_state::ensure_poller()
{
    if (poller_running || closed)
        return;
    poller_running = true;
    spawn_background(client->shared_from_this(), "the watch poller",
                     poll_loop(shared_from_this(), client->shared_from_this()),
                     [st = shared_from_this()] { st->poller_failed(); });
}

void watch_state::poll_now(const std::shared_ptr<watch_entry>& e, bool at_once)
{
    e->next_poll = clock_type::now() + (at_once ? milliseconds(0) : e->poll_interval());
    if (poller_running)
        poll_timer.cancel(); // re-plan with this key
    ensure_poller();
}

// ---------------------------------------------------------------- subscription

watch_service::subscription::subscription(std::shared_ptr<watch_state> st, std::shared_ptr<watch_entry> e,
                                          std::shared_ptr<watch_subscriber> s) noexcept
    : state_(std::move(st)), entry_(std::move(e)), sub_(std::move(s))
{
}

watch_service::subscription::~subscription()
{
    sub_->active = false;
    auto& subs = entry_->subs;
    subs.erase(std::remove(subs.begin(), subs.end(), sub_), subs.end());
    if (!subs.empty() || state_->closed)
        return;
    if (entry_->blocking) {
        // Nobody follows the key any more. A query that was never sent is dropped at once; one in
        // flight is left to finish (usually soon: the last user's own write changes the key), since
        // an abandoned blocking query keeps a connection slot busy on the agent for a while.
        if (!entry_->sent_query && !entry_->stopping) {
            entry_->stopping = true;
            entry_->stop.emit(asio::cancellation_type::terminal);
        } else {
            state_->make_room();
        }
        return;
    }
    state_->erase_if_unused(entry_);
}

void watch_service::subscription::set_interest(const watch_interest& interest) { sub_->interest = interest; }

const key_view& watch_service::subscription::view() const noexcept { return entry_->view; }

// ---------------------------------------------------------------- service

watch_service::watch_service(client_impl& client, std::size_t budget, milliseconds wait)
    : state_(std::make_shared<watch_state>(client, budget, wait))
{
    std::weak_ptr<watch_state> weak = state_;
    state_->hook_id = client.add_cancel_hook([weak] {
        if (auto st = weak.lock()) {
            st->poll_timer.cancel();
            const auto entries = st->entries;
            for (const auto& [key, e] : entries) {
                if (e->blocking) {
                    e->client_cancelled = true;
                    if (!e->stopping) {
                        e->stopping = true;
                        e->stop.emit(asio::cancellation_type::terminal);
                    }
                }
                if (!e->subs.empty()) {
                    e->idle = true;
                    e->view.error = make_error_code(asio::error::operation_aborted);
                    st->deliver(*e);
                }
            }
        }
    });
}

watch_service::~watch_service()
{
    state_->client->remove_cancel_hook(state_->hook_id);
    state_->closed = true;
    state_->poll_timer.cancel();
    state_->start_timer.cancel();
    for (const auto& [key, e] : state_->entries)
        if (e->blocking)
            e->stop.emit(asio::cancellation_type::terminal);
}

std::unique_ptr<watch_service::subscription> watch_service::subscribe(const std::string& key,
                                                                      const request_options& request,
                                                                      const watch_interest& interest, callback cb,
                                                                      const std::optional<key_view>& seed)
{
    return subscribe_any(key, false, request, interest, std::move(cb), seed);
}

std::unique_ptr<watch_service::subscription> watch_service::subscribe_prefix(const std::string& prefix,
                                                                             const request_options& request,
                                                                             const watch_interest& interest,
                                                                             callback cb,
                                                                             const std::optional<key_view>& seed)
{
    return subscribe_any(prefix, true, request, interest, std::move(cb), seed);
}

std::unique_ptr<watch_service::subscription> watch_service::subscribe_any(const std::string& key, bool prefix,
                                                                          const request_options& request,
                                                                          const watch_interest& interest, callback cb,
                                                                          const std::optional<key_view>& seed)
{
    auto& st = *state_;
    auto identity = options_identity(request) + (prefix ? "\x1fprefix\x1f" : "\x1fkey\x1f") + key;
    auto& slot = st.entries[identity];
    const bool fresh = !slot;
    if (fresh)
        slot = std::make_shared<watch_entry>(std::move(identity), key, prefix, request, st.next_order++);
    auto e = slot;
    auto sub = std::make_shared<watch_subscriber>();
    sub->cb = std::move(cb);
    sub->interest = interest;
    e->subs.push_back(sub);
    if (seed && seed->known && !seed->error && (!e->view.known || e->view.error || seed->index > e->view.index)) {
        const auto version = e->view.version;
        e->view = *seed;
        e->view.version = version;
        ++e->seed_stamp;
    }
    e->idle = false;
    e->client_cancelled = false;
    if (e->pending_start && interest.start_delay.count() == 0)
        e->pending_start = false; // this user needs the watch now (the runner skips it)
    if (!e->blocking && !e->pending_start) {
        if (st.slots_in_use < st.budget) {
            if (fresh && interest.start_delay.count() > 0)
                st.start_later(e, interest.start_delay);
            else
                st.start_loop(e);
        } else {
            st.poll_now(e, !e->view.known);
            st.make_room();
        }
    }
    return std::make_unique<subscription>(state_, e, std::move(sub));
}

std::size_t watch_service::blocking_queries() const noexcept { return state_->slots_in_use; }

std::size_t watch_service::polled_keys() const noexcept
{
    return static_cast<std::size_t>(std::count_if(state_->entries.begin(), state_->entries.end(),
                                                  [](const auto& kv) { return kv.second->polled(); }));
}

std::uint64_t watch_service::poll_transactions() const noexcept { return state_->poll_txns; }

// ---------------------------------------------------------------- change_waiter

change_waiter::change_waiter(asio::any_io_executor executor) : wake_(std::make_shared<asio::steady_timer>(executor)) {}

void change_waiter::follow(watch_service& service, const std::string& key, bool prefix, const request_options& request,
                           const watch_interest& interest, const std::optional<key_view>& seed)
{
    std::weak_ptr<asio::steady_timer> weak_wake = wake_;
    auto on_change = [weak_wake](const key_view&) {
        if (auto w = weak_wake.lock())
            w->cancel();
    };
    sub_ = prefix ? service.subscribe_prefix(key, request, interest, std::move(on_change), seed)
                  : service.subscribe(key, request, interest, std::move(on_change), seed);
    seen_ = sub_->view().version;
}

asio::awaitable<const key_view*> change_waiter::next()
{
    if (sub_->view().version == seen_) {
        wake_->expires_at(asio::steady_timer::time_point::max());
        co_await wake_->async_wait(use_tuple); // ends with a delivery, or with the caller's cancellation
    }
    const auto& v = sub_->view();
    if (v.version == seen_ || !(v.known || v.error))
        co_return nullptr;
    seen_ = v.version;
    co_return &v;
}

watch_service& client_impl::watches()
{
    if (!watches_) {
        // Blocking queries need pool connections that renewals and writes do not use.
        const auto usable = options.max_connections > options.reserved_connections + 1
                                ? options.max_connections - options.reserved_connections - 1
                                : std::size_t(1);
        const auto budget = std::min(options.max_watches, usable);
        if (budget < options.max_watches)
            warn("max_watches " + std::to_string(options.max_watches) + " exceeds the connections available to " +
                 "blocking queries; using " + std::to_string(budget));
        watches_ = std::make_shared<watch_service>(*this, budget, options.watch_wait);
    }
    return *watches_;
}

} // namespace colock::consul::detail
