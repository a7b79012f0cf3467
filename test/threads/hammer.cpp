// One consul::client used from every thread of an asio::thread_pool against the real agent (label "threads"; built
// in every configuration, and run once more under ThreadSanitizer by scripts/test): 64 coroutines on the pool's own
// executor (no strand) contend for 8 keys through one client made on a strand of the pool, or on the pool itself;
// a semaphore of limit 2 on 2 names the same way; and a chaos case that cancels acquires and lost() waits after a
// random 0-5 ms, destroys locks with acquires pending, mixes in try_acquire and cancels the whole client once from
// another thread, and then proves that every key can still be taken, that nothing is left in Consul and that the
// pool runs out of work.
//
// Boost.Test is not thread-safe: the pool's threads only count into atomics and collect failure texts under a
// mutex; every BOOST_TEST runs on the main thread. A hang inside the pool cannot be ended by a deadline there, so
// each case runs under a watchdog thread that aborts the process with a message (and what the case had reached)
// when the case, or the final pool.join(), does not finish in time.
//
// COLOCK_THREADS_SEED=<n> repeats a run's random choices (each case prints its seed; thread timing still varies).

#include <colock/consul/client.hpp>
#include <colock/error.hpp>
#include <colock/lock.hpp>
#include <colock/semaphore.hpp>

#include "async_test.hpp"
#include "consul_agent.hpp"
#include "fault_helpers.hpp"
#include "kv_probe.hpp"
#include "lock_helpers.hpp"
#include "test_options.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace asio = boost::asio;
using namespace colock;
using namespace colock::consul;
using namespace colock::test;
using namespace std::chrono_literals;

BOOST_TEST_GLOBAL_FIXTURE(consul_agent_fixture);

namespace {

consul_agent& agent() { return consul_agent::instance(); }

constexpr int pool_threads = 4;
constexpr int lock_workers = 64;
constexpr int lock_keys = 8;
constexpr int lock_rounds = 5;
constexpr int semaphore_names = 2;
constexpr int semaphore_workers_per_name = 8;
constexpr int semaphore_rounds = 5;
constexpr std::uint32_t semaphore_limit = 2;
constexpr int chaos_workers = 32;
constexpr int chaos_rounds = 12;
constexpr int short_lived_clients = 40;

// Bounds of a whole case (the work on the pool) and of the final pool.join() after the client is gone.
constexpr auto case_limit = 120s;
constexpr auto join_limit = 20s;

// ------------------------------------------------------------------------------------------------ scaffolding

/// Aborts the process, naming `what` and what `status()` says the case had reached, unless it is destroyed within
/// `limit`: the deadline of work on the pool that nothing on the pool can be trusted to end.
class watchdog {
public:
    watchdog(std::string what, std::chrono::seconds limit, std::function<std::string()> status = {})
        : what_(std::move(what)), limit_(limit), status_(std::move(status)), thread_([this] { watch(); })
    {
    }
    watchdog(const watchdog&) = delete;
    watchdog& operator=(const watchdog&) = delete;
    ~watchdog()
    {
        {
            std::lock_guard<std::mutex> g(m_);
            done_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }

private:
    void watch()
    {
        std::unique_lock<std::mutex> g(m_);
        if (cv_.wait_for(g, limit_, [this] { return done_; }))
            return;
        const std::string status = status_ ? status_() : std::string();
        std::fprintf(stderr, "\nthreads.hammer: WATCHDOG: %s did not finish within %lld s%s%s; aborting\n",
                     what_.c_str(), static_cast<long long>(limit_.count()), status.empty() ? "" : ": ",
                     status.c_str());
        std::fflush(stderr);
        std::abort();
    }

    std::string what_;
    std::chrono::seconds limit_;
    std::function<std::string()> status_;
    std::mutex m_;
    std::condition_variable cv_;
    bool done_ = false;
    std::thread thread_; // last: starts once the members above exist
};

/// Work started on the pool that the main thread waits for (coroutines, callbacks of operations).
class pending_work {
public:
    void add(int n = 1)
    {
        std::lock_guard<std::mutex> g(m_);
        count_ += n;
    }
    void done()
    {
        std::lock_guard<std::mutex> g(m_);
        if (--count_ == 0)
            cv_.notify_all();
    }
    /// Unbounded: the case's watchdog bounds it.
    void wait()
    {
        std::unique_lock<std::mutex> g(m_);
        cv_.wait(g, [this] { return count_ == 0; });
    }
    int count()
    {
        std::lock_guard<std::mutex> g(m_);
        return count_;
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    int count_ = 0;
};

/// A one-shot event the main thread can wait for (unbounded: the watchdog bounds it).
class event {
public:
    void set()
    {
        std::lock_guard<std::mutex> g(m_);
        set_ = true;
        cv_.notify_all();
    }
    void wait()
    {
        std::unique_lock<std::mutex> g(m_);
        cv_.wait(g, [this] { return set_; });
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    bool set_ = false;
};

/// Failure texts from the pool's threads, reported by the main thread.
class failures {
public:
    void add(std::string what)
    {
        std::lock_guard<std::mutex> g(m_);
        ++count_;
        if (texts_.size() < 20) // the first ones are the story; a flood would bury it
            texts_.push_back(std::move(what));
    }
    /// On the main thread, after the pool has joined.
    void report(const std::string& in)
    {
        std::lock_guard<std::mutex> g(m_);
        for (const auto& t : texts_)
            BOOST_ERROR(in << ": " << t);
        BOOST_TEST(count_ == 0, in << ": " << count_ << " failure(s) on the pool's threads");
    }

private:
    std::mutex m_;
    std::vector<std::string> texts_;
    int count_ = 0;
};

/// The pool threads that ran a worker's code (the case is only a thread test if there are several).
class threads_seen {
public:
    void note()
    {
        std::lock_guard<std::mutex> g(m_);
        ids_.insert(std::this_thread::get_id());
    }
    std::size_t size()
    {
        std::lock_guard<std::mutex> g(m_);
        return ids_.size();
    }

private:
    std::mutex m_;
    std::set<std::thread::id> ids_;
};

std::string text_of(std::exception_ptr e)
{
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return "a non-std exception";
    }
}

/// co_spawn's completion handler for a worker: an exception is a failure; the worker is done either way.
auto worker_done(failures& fail, pending_work& work, std::string what)
{
    return [&fail, &work, what = std::move(what)](std::exception_ptr e) {
        if (e)
            fail.add(what + " threw: " + text_of(e));
        work.done();
    };
}

/// The run's random seed: COLOCK_THREADS_SEED, else a fresh one (printed, so a run can be repeated).
unsigned case_seed(const char* name)
{
    unsigned seed = 0;
    if (const char* s = std::getenv("COLOCK_THREADS_SEED"); s && *s)
        seed = static_cast<unsigned>(std::strtoul(s, nullptr, 10));
    else
        seed = std::random_device{}();
    BOOST_TEST_MESSAGE(name << ": seed " << seed << " (COLOCK_THREADS_SEED=" << seed << " repeats the choices)");
    return seed;
}

/// Sleeps for a random `min_us`..`max_us` microseconds on the coroutine's executor (the holder's "work").
asio::awaitable<void> random_pause(std::minstd_rand& rng, unsigned max_us, unsigned min_us = 0)
{
    const auto d = std::chrono::microseconds(min_us + rng() % (max_us - min_us + 1));
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::use_awaitable);
}

/// Joins the pool under a watchdog: after the client is gone, nothing of it may keep the pool's threads busy.
void join_within_limit(asio::thread_pool& pool, const std::string& name)
{
    watchdog dog(name + ": pool.join() after the locks and the client were destroyed", join_limit);
    pool.join();
}

/// After the pool has joined: Consul shows no lock on `keys` and no session named `prefix...`.
void expect_nothing_left(const std::string& prefix, const std::vector<std::string>& keys)
{
    run_async([&](asio::io_context&) -> asio::awaitable<void> {
        for (const auto& key : keys) {
            const bool unlocked = co_await eventually_unlocked(key, 5s);
            BOOST_TEST(unlocked, key << " is still locked by " << read_key(key).session);
        }
        co_await expect_no_sessions_named(prefix);
    });
}

// ------------------------------------------------------------------------------------------------ locks

struct key_state_counters {
    std::atomic<int> inside{0};
    std::atomic<std::uint64_t> last_token{0};
};

struct lock_stats {
    std::array<key_state_counters, lock_keys> keys;
    std::atomic<int> holds{0};
    std::atomic<int> violations{0};
    failures fail;
    pending_work work;
    threads_seen threads;
};

/// A holder of `key` comes in: a second one inside at once is a violation (the counter the cases rely on; the
/// control case proves that it notices holders who skip the lock).
void enter_hold(key_state_counters& ks, lock_stats& st, const std::string& key)
{
    if (ks.inside.fetch_add(1) != 0) {
        st.violations.fetch_add(1);
        st.fail.add("two holders of " + key + " at once");
    }
}

void leave_hold(key_state_counters& ks) { ks.inside.fetch_sub(1); }

/// One of the 64: its own lock on `key` (sharing the one client); `rounds` times acquire, check that nobody else
/// of this process is inside, read the accessors from this pool thread, pause 0-1 ms, leave, release.
asio::awaitable<void> lock_worker(client& c, std::string key, key_state_counters& ks, lock_stats& st, int rounds,
                                  unsigned seed)
{
    std::minstd_rand rng(seed);
    lock l(c, key);
    for (int r = 0; r < rounds; ++r) {
        auto [ec] = co_await l.acquire(tuple_awaitable);
        st.threads.note();
        if (ec) {
            st.fail.add("acquire of " + key + ": " + ec.message());
            continue;
        }
        enter_hold(ks, st, key);
        const auto token = l.fencing_token();
        const bool held = l.is_held();
        const unsigned count = l.hold_count();
        if (!held || count != 1 || token == 0)
            st.fail.add("just acquired " + key + ": is_held " + std::to_string(held) + ", hold_count " +
                        std::to_string(count) + ", fencing_token " + std::to_string(token));
        const auto previous = ks.last_token.exchange(token);
        if (token <= previous)
            st.fail.add("fencing token of " + key + " did not rise: " + std::to_string(previous) + " then " +
                        std::to_string(token));
        co_await random_pause(rng, 1000);
        st.threads.note();
        if (l.fencing_token() != token || !l.is_held())
            st.fail.add("hold of " + key + " changed while held: token " + std::to_string(l.fencing_token()));
        leave_hold(ks);
        auto [rec] = co_await l.release(tuple_awaitable);
        if (rec)
            st.fail.add("release of " + key + ": " + rec.message());
        else if (l.is_held() || l.hold_count() != 0 || l.fencing_token() != 0)
            st.fail.add("released " + key + " but the accessors still show a hold");
        st.holds.fetch_add(1);
    }
}

/// The positive control's worker: enters and leaves the counted section without any lock.
asio::awaitable<void> unlocked_worker(key_state_counters& ks, lock_stats& st, int rounds)
{
    asio::steady_timer hold(co_await asio::this_coro::executor);
    for (int r = 0; r < rounds; ++r) {
        enter_hold(ks, st, "the unlocked key");
        hold.expires_after(std::chrono::milliseconds(1));
        co_await hold.async_wait(asio::use_awaitable);
        leave_hold(ks);
        st.holds.fetch_add(1);
    }
}

/// close() from a pool coroutine (the client's clean end of case a).
asio::awaitable<void> close_client(client& c, failures& fail)
{
    auto [ec] = co_await c.close(tuple_awaitable);
    if (ec)
        fail.add("close(): " + ec.message());
}

enum class client_home { strand_of_pool, pool };

/// Cases a and b: 64 coroutines on pool.get_executor() hammer 8 keys through one client living on `home`.
void hammer_locks(const std::string& name, client_home home, bool close_first)
{
    const auto prefix = agent().unique_prefix(name);
    std::vector<std::string> keys;
    for (int k = 0; k < lock_keys; ++k)
        keys.push_back(prefix + "key" + std::to_string(k));
    const unsigned seed = case_seed(name.c_str());
    lock_stats st;
    const auto t0 = clock_type::now();
    {
        asio::thread_pool pool(pool_threads);
        {
            watchdog dog(name, case_limit, [&] {
                return "holds " + std::to_string(st.holds.load()) + " of " +
                       std::to_string(lock_workers * lock_rounds) + ", workers left " +
                       std::to_string(st.work.count());
            });
            std::optional<client> c;
            if (home == client_home::strand_of_pool)
                c.emplace(asio::make_strand(pool), lock_client(prefix));
            else
                c.emplace(pool.get_executor(), lock_client(prefix));
            st.work.add(lock_workers);
            for (int i = 0; i < lock_workers; ++i)
                asio::co_spawn(pool.get_executor(),
                               lock_worker(*c, keys[i % lock_keys], st.keys[i % lock_keys], st, lock_rounds, seed + i),
                               worker_done(st.fail, st.work, "worker " + std::to_string(i)));
            st.work.wait(); // every lock is destroyed by now (on the pool's threads)
            if (close_first) {
                st.work.add();
                asio::co_spawn(pool.get_executor(), close_client(*c, st.fail), worker_done(st.fail, st.work, "close"));
                st.work.wait();
            }
            c.reset(); // on the main thread, while the pool's threads still run whatever the client left
        }
        join_within_limit(pool, name);
    }
    BOOST_TEST_MESSAGE(name << ": " << st.holds.load() << " holds on " << lock_keys << " keys by " << lock_workers
                            << " coroutines on " << st.threads.size() << " pool threads in " << ms_since(t0)
                            << " ms");
    st.fail.report(name);
    BOOST_TEST(st.violations.load() == 0);
    BOOST_TEST(st.holds.load() == lock_workers * lock_rounds);
    BOOST_TEST(st.threads.size() >= 2u, "the workers ran on " << st.threads.size() << " thread(s) only");
    for (int k = 0; k < lock_keys; ++k)
        BOOST_TEST(st.keys[k].inside.load() == 0);
    expect_nothing_left(prefix, keys);
}

// ------------------------------------------------------------------------------------------------ semaphore

struct semaphore_counters {
    std::atomic<int> inside{0};
    std::atomic<int> most_inside{0};
};

struct semaphore_stats {
    std::array<semaphore_counters, semaphore_names> names;
    std::atomic<int> holds{0};
    std::atomic<int> violations{0};
    failures fail;
    pending_work work;
    threads_seen threads;
};

asio::awaitable<void> semaphore_worker(client& c, std::string prefix, std::string session_name,
                                       semaphore_counters& sc, semaphore_stats& st, int rounds, unsigned seed)
{
    std::minstd_rand rng(seed);
    semaphore s(c, prefix, semaphore_limit, named_session(session_name));
    for (int r = 0; r < rounds; ++r) {
        auto [ec] = co_await s.acquire(tuple_awaitable);
        st.threads.note();
        if (ec) {
            st.fail.add("acquire of semaphore " + prefix + ": " + ec.message());
            continue;
        }
        const int now_inside = sc.inside.fetch_add(1) + 1;
        if (now_inside > static_cast<int>(semaphore_limit)) {
            st.violations.fetch_add(1);
            st.fail.add(std::to_string(now_inside) + " holders of semaphore " + prefix + " (limit " +
                        std::to_string(semaphore_limit) + ")");
        }
        int most = sc.most_inside.load();
        while (now_inside > most && !sc.most_inside.compare_exchange_weak(most, now_inside)) {
        }
        const auto token = s.fencing_token();
        if (!s.is_held() || token == 0 || !s.session_id())
            st.fail.add("just acquired semaphore " + prefix + " but the accessors show no hold");
        // 10-50 ms, longer than a lock's: a handoff of a slot takes tens of ms (every waiter wakes and tries the
        // record's check-and-set), and the holds should overlap up to the limit.
        co_await random_pause(rng, 50000, 10000);
        st.threads.note();
        if (s.fencing_token() != token || !s.is_held())
            st.fail.add("slot of semaphore " + prefix + " changed while held");
        sc.inside.fetch_sub(1);
        auto [rec] = co_await s.release(tuple_awaitable);
        if (rec)
            st.fail.add("release of semaphore " + prefix + ": " + rec.message());
        else if (s.is_held() || s.fencing_token() != 0)
            st.fail.add("released semaphore " + prefix + " but the accessors still show a slot");
        st.holds.fetch_add(1);
    }
}

// ------------------------------------------------------------------------------------------------ chaos

struct chaos_stats {
    std::array<std::atomic<int>, lock_keys> inside{};
    std::atomic<int> rounds_done{0};
    std::atomic<bool> client_cancelled{false};
    // What happened, for the message (timing decides the mix; none of these is a failure).
    std::atomic<int> acquired{0}, acquire_aborted{0}, destroyed_pending{0}, won_before_destroy{0}, try_taken{0},
        try_refused{0}, destroyed_held{0}, lost_cancelled{0}, lost_ended{0}, tolerated{0};
    failures fail;
    pending_work work;      // the workers
    pending_work callbacks; // acquires of destroyed locks: their handlers must still run
    event halfway;          // half the rounds are done: the main thread cancels the client
    threads_seen threads;
    std::mutex errors_m;
    std::map<std::string, int> errors; // tolerated error texts (after the client's cancel()), counted
};

/// What the client's cancel() may legitimately make an operation complete with.
bool cancel_may_cause(const error_code& ec)
{
    return ec == asio::error::operation_aborted || ec == errc::client_closed || ec == errc::not_held ||
           ec == errc::indeterminate_write || ec == condition::retryable || ec == condition::timeout ||
           ec == condition::ownership_lost;
}

/// An error of a chaos operation: after the client's cancel() anything `cancel_may_cause` is tolerated (and
/// counted); before it, and always for an internal error, it is a failure.
void chaos_error(chaos_stats& st, const std::string& what, const error_code& ec)
{
    if (ec == errc::internal_error || !st.client_cancelled.load() || !cancel_may_cause(ec)) {
        st.fail.add(what + ": " + ec.message());
        return;
    }
    st.tolerated.fetch_add(1);
    std::lock_guard<std::mutex> g(st.errors_m);
    ++st.errors[what + ": " + ec.message()];
}

/// Arms a timer on this coroutine's executor (its own strand of the pool) that emits `type` on `sig` after a
/// random 0-5 ms: the emission runs on another pool thread than the one that started the operation, but on the
/// strand its completion handler also runs on, as Asio requires of a cancellation signal.
std::shared_ptr<asio::steady_timer> cancel_later(const asio::any_io_executor& ex,
                                                 std::shared_ptr<asio::cancellation_signal> sig,
                                                 asio::cancellation_type type, std::minstd_rand& rng)
{
    auto t = std::make_shared<asio::steady_timer>(ex, std::chrono::microseconds(rng() % 5001));
    t->async_wait([sig, type](error_code ec) {
        if (!ec)
            sig->emit(type);
    });
    return t;
}

/// Inside a chaos hold: counts, pauses 0-1 ms (while the client is not cancelled, nobody else may be inside).
asio::awaitable<void> chaos_hold(chaos_stats& st, int k, lock& l, std::minstd_rand& rng)
{
    if (st.inside[k].fetch_add(1) != 0 && !st.client_cancelled.load())
        st.fail.add("two holders of " + l.key() + " at once");
    (void)l.fencing_token();
    (void)l.hold_count();
    (void)l.is_held();
    l.set_value("holder " + std::to_string(k)); // what the release writes; read back from any thread
    if (l.options().value.rfind("holder ", 0) != 0)
        st.fail.add("options().value of " + l.key() + " is not a value set_value() gave");
    co_await random_pause(rng, 1000);
    st.inside[k].fetch_sub(1);
}

asio::awaitable<void> chaos_release(chaos_stats& st, lock& l)
{
    auto [ec] = co_await l.release(tuple_awaitable);
    if (ec)
        chaos_error(st, "release", ec);
    else if (l.is_held())
        st.fail.add("released " + l.key() + " but is_held() is still true");
}

/// acquire() cancelled (terminal, partial or total, at random) after a random 0-5 ms.
asio::awaitable<void> chaos_cancelled_acquire(client& c, const std::string& key, int k, chaos_stats& st,
                                              std::minstd_rand& rng)
{
    const auto ex = co_await asio::this_coro::executor;
    lock l(c, key);
    auto sig = std::make_shared<asio::cancellation_signal>();
    static constexpr std::array<asio::cancellation_type, 3> types{
        asio::cancellation_type::terminal, asio::cancellation_type::partial, asio::cancellation_type::total};
    auto timer = cancel_later(ex, sig, types[rng() % types.size()], rng);
    auto token = asio::bind_cancellation_slot(sig->slot(), tuple_awaitable);
    auto [ec] = co_await l.acquire(token);
    timer->cancel();
    if (!ec) {
        st.acquired.fetch_add(1);
        co_await chaos_hold(st, k, l, rng);
        co_await chaos_release(st, l);
    } else if (ec == asio::error::operation_aborted) {
        st.acquire_aborted.fetch_add(1);
        if (l.is_held())
            st.fail.add("a cancelled acquire of " + key + " left the lock held");
    } else {
        chaos_error(st, "cancelled acquire", ec);
    }
}

/// acquire() started with a callback, then the lock destroyed after a random 0-5 ms (pending, or held if it won).
asio::awaitable<void> chaos_destroy_pending(client& c, const std::string& key, chaos_stats& st, std::minstd_rand& rng)
{
    const auto ex = co_await asio::this_coro::executor;
    auto l = std::make_unique<lock>(c, key);
    st.callbacks.add();
    l->acquire(asio::bind_executor(ex, [&st](error_code ec) {
        if (!ec)
            st.won_before_destroy.fetch_add(1);
        else if (ec == asio::error::operation_aborted || ec == errc::client_closed)
            st.destroyed_pending.fetch_add(1);
        else
            chaos_error(st, "acquire of a destroyed lock", ec);
        st.callbacks.done();
    }));
    co_await random_pause(rng, 5000);
    l.reset(); // on this pool thread; a hold it may have won is released in the background
}

/// try_acquire(); a taken lock is released, or destroyed while held (released in the background).
asio::awaitable<void> chaos_try(client& c, const std::string& key, int k, chaos_stats& st, std::minstd_rand& rng)
{
    lock l(c, key);
    auto [ec, taken] = co_await l.try_acquire(tuple_awaitable);
    if (ec) {
        chaos_error(st, "try_acquire", ec);
        co_return;
    }
    if (!taken) {
        st.try_refused.fetch_add(1);
        co_return;
    }
    st.try_taken.fetch_add(1);
    co_await chaos_hold(st, k, l, rng);
    if (rng() % 2) {
        co_await chaos_release(st, l);
    } else {
        st.destroyed_held.fetch_add(1); // ~lock while held
    }
}

/// acquire() (bounded: cancelled after 10 s), then lost() cancelled (total) after a random 0-5 ms.
asio::awaitable<void> chaos_cancelled_lost(client& c, const std::string& key, int k, chaos_stats& st,
                                           std::minstd_rand& rng)
{
    const auto ex = co_await asio::this_coro::executor;
    lock l(c, key);
    auto bound = std::make_shared<asio::cancellation_signal>();
    asio::steady_timer bound_timer(ex, 10s);
    bound_timer.async_wait([bound](error_code e) {
        if (!e)
            bound->emit(asio::cancellation_type::terminal);
    });
    auto acquire_token = asio::bind_cancellation_slot(bound->slot(), tuple_awaitable);
    auto [ec] = co_await l.acquire(acquire_token);
    bound_timer.cancel();
    if (ec) {
        chaos_error(st, "bounded acquire", ec);
        co_return;
    }
    st.acquired.fetch_add(1);
    st.inside[k].fetch_add(1);
    auto sig = std::make_shared<asio::cancellation_signal>();
    auto timer = cancel_later(ex, sig, asio::cancellation_type::total, rng);
    auto lost_token = asio::bind_cancellation_slot(sig->slot(), tuple_awaitable);
    auto [lec, reason] = co_await l.lost(lost_token);
    timer->cancel();
    st.inside[k].fetch_sub(1);
    if (lec == asio::error::operation_aborted)
        st.lost_cancelled.fetch_add(1);
    else if (!lec && st.client_cancelled.load())
        st.lost_ended.fetch_add(1); // the client's cancel() ended the hold first
    else if (!lec)
        st.fail.add("lost() of " + key + " reported a loss without a cancel(): " + reason.message());
    else
        chaos_error(st, "lost()", lec);
    co_await chaos_release(st, l);
}

/// One of the chaos workers, on a strand of its own (so its cancellation signals are emitted where the
/// operations' handlers run): `rounds` random operations on `key`.
asio::awaitable<void> chaos_worker(client& c, std::string key, int k, chaos_stats& st, int rounds, unsigned seed)
{
    std::minstd_rand rng(seed);
    for (int r = 0; r < rounds; ++r) {
        st.threads.note();
        switch (rng() % 4) {
        case 0:
            co_await chaos_cancelled_acquire(c, key, k, st, rng);
            break;
        case 1:
            co_await chaos_destroy_pending(c, key, st, rng);
            break;
        case 2:
            co_await chaos_try(c, key, k, st, rng);
            break;
        default:
            co_await chaos_cancelled_lost(c, key, k, st, rng);
            break;
        }
        if (st.rounds_done.fetch_add(1) + 1 == chaos_workers * chaos_rounds / 2)
            st.halfway.set();
    }
}

/// After the chaos: a fresh lock on `key` (on the same client, so a local turn left behind would show too) is
/// acquired within 10 s, and released. On a strand of its own, as the chaos workers (its deadline is a signal).
asio::awaitable<void> acquire_fresh(client& c, std::string key, failures& fail)
{
    const auto ex = co_await asio::this_coro::executor;
    lock l(c, key);
    auto bound = std::make_shared<asio::cancellation_signal>();
    asio::steady_timer bound_timer(ex, 10s);
    bound_timer.async_wait([bound](error_code e) {
        if (!e)
            bound->emit(asio::cancellation_type::terminal);
    });
    auto token = asio::bind_cancellation_slot(bound->slot(), tuple_awaitable);
    auto [ec] = co_await l.acquire(token);
    bound_timer.cancel();
    if (ec) {
        fail.add("a fresh lock on " + key + " after the chaos: " + ec.message() +
                 (ec == asio::error::operation_aborted ? " (not acquired within 10 s: something is left held)" : ""));
        co_return;
    }
    auto [rec] = co_await l.release(tuple_awaitable);
    if (rec)
        fail.add("release of the fresh lock on " + key + ": " + rec.message());
}

} // namespace

BOOST_AUTO_TEST_SUITE(test_hammer)

BOOST_AUTO_TEST_CASE(client_on_a_strand_callers_on_the_pool_exclude_each_other_on_every_key)
{
    hammer_locks("client_on_strand", client_home::strand_of_pool, true);
}

BOOST_AUTO_TEST_CASE(client_and_callers_all_on_the_pool_exclude_each_other_on_every_key)
{
    hammer_locks("everything_on_pool", client_home::pool, false);
}

BOOST_AUTO_TEST_CASE(the_exclusion_counter_flags_workers_that_skip_the_lock)
{
    // Positive control: the same counter, 16 workers on the pool holding one key for 1 ms each without a lock.
    lock_stats st;
    {
        asio::thread_pool pool(pool_threads);
        watchdog dog("control", case_limit, [&] { return "holds " + std::to_string(st.holds.load()) + " of 80"; });
        st.work.add(16);
        for (int i = 0; i < 16; ++i)
            asio::co_spawn(pool.get_executor(), unlocked_worker(st.keys[0], st, 5),
                           worker_done(st.fail, st.work, "unlocked worker " + std::to_string(i)));
        st.work.wait();
        join_within_limit(pool, "control");
    }
    BOOST_TEST_MESSAGE("control: " << st.violations.load() << " overlapping holds flagged in " << st.holds.load());
    BOOST_TEST(st.holds.load() == 80);
    BOOST_TEST(st.violations.load() > 0, "16 unlocked workers were never seen inside together");
    BOOST_TEST(st.keys[0].inside.load() == 0);
}

BOOST_AUTO_TEST_CASE(short_lived_clients_destroyed_outside_the_pool_right_after_contention_leave_nothing_behind)
{
    // 40 clients one after the other (on a strand of the pool, then on the pool, in turn), each used by two
    // coroutines contending for one key (so its watch machinery runs) and destroyed by the main thread as soon as
    // they are done: whichever thread drops the client's last reference, its background work must stay on its
    // strand.
    const std::string name = "short_lived_clients";
    const auto prefix = agent().unique_prefix(name);
    std::vector<std::string> keys;
    for (int k = 0; k < lock_keys; ++k)
        keys.push_back(prefix + "key" + std::to_string(k));
    const unsigned seed = case_seed(name.c_str());
    lock_stats st;
    int clients = 0;
    const auto t0 = clock_type::now();
    {
        asio::thread_pool pool(pool_threads);
        {
            watchdog dog(name, case_limit, [&] {
                return "holds " + std::to_string(st.holds.load()) + " of " + std::to_string(2 * short_lived_clients) +
                       ", workers left " + std::to_string(st.work.count());
            });
            for (; clients < short_lived_clients; ++clients) {
                const int k = clients % lock_keys;
                std::optional<client> c;
                if (clients % 2 == 0)
                    c.emplace(asio::make_strand(pool), lock_client(prefix));
                else
                    c.emplace(pool.get_executor(), lock_client(prefix));
                st.work.add(2);
                for (int j = 0; j < 2; ++j)
                    asio::co_spawn(pool.get_executor(),
                                   lock_worker(*c, keys[k], st.keys[k], st, 1, seed + 2 * clients + j),
                                   worker_done(st.fail, st.work, "client " + std::to_string(clients) + " worker " +
                                                                     std::to_string(j)));
                st.work.wait();
                c.reset(); // at once, on the main thread, while the pool's threads finish what the client started
            }
        }
        join_within_limit(pool, name);
    }
    BOOST_TEST_MESSAGE(name << ": " << clients << " clients, " << st.holds.load() << " holds on "
                            << st.threads.size() << " pool threads in " << ms_since(t0) << " ms");
    st.fail.report(name);
    BOOST_TEST(st.violations.load() == 0);
    BOOST_TEST(st.holds.load() == 2 * short_lived_clients);
    expect_nothing_left(prefix, keys);
}

BOOST_AUTO_TEST_CASE(semaphore_from_the_pool_never_lets_more_than_its_limit_in)
{
    const std::string name = "semaphore_on_pool";
    const auto prefix = agent().unique_prefix(name);
    std::vector<std::string> sems;
    for (int n = 0; n < semaphore_names; ++n)
        sems.push_back(prefix + "sem" + std::to_string(n));
    const unsigned seed = case_seed(name.c_str());
    semaphore_stats st;
    const int workers = semaphore_names * semaphore_workers_per_name;
    const auto t0 = clock_type::now();
    {
        asio::thread_pool pool(pool_threads);
        {
            watchdog dog(name, case_limit, [&] {
                return "holds " + std::to_string(st.holds.load()) + " of " +
                       std::to_string(workers * semaphore_rounds) + ", workers left " +
                       std::to_string(st.work.count());
            });
            std::optional<client> c;
            c.emplace(asio::make_strand(pool), lock_client(prefix));
            st.work.add(workers);
            for (int i = 0; i < workers; ++i)
                asio::co_spawn(pool.get_executor(),
                               semaphore_worker(*c, sems[i % semaphore_names], prefix + "sem-session",
                                                st.names[i % semaphore_names], st, semaphore_rounds, seed + i),
                               worker_done(st.fail, st.work, "semaphore worker " + std::to_string(i)));
            st.work.wait();
            c.reset();
        }
        join_within_limit(pool, name);
    }
    BOOST_TEST_MESSAGE(name << ": " << st.holds.load() << " slots held on " << semaphore_names << " semaphores (limit "
                            << semaphore_limit << ") by " << workers << " coroutines on " << st.threads.size()
                            << " pool threads in " << ms_since(t0) << " ms; most inside at once: "
                            << st.names[0].most_inside.load() << " / " << st.names[1].most_inside.load());
    st.fail.report(name);
    BOOST_TEST(st.violations.load() == 0);
    BOOST_TEST(st.holds.load() == workers * semaphore_rounds);
    BOOST_TEST(st.threads.size() >= 2u, "the workers ran on " << st.threads.size() << " thread(s) only");
    for (int n = 0; n < semaphore_names; ++n)
        BOOST_TEST_WARN(st.names[n].most_inside.load() == static_cast<int>(semaphore_limit),
                        "semaphore " << sems[n] << " never had " << semaphore_limit << " holders at once");
    run_async([&](asio::io_context&) -> asio::awaitable<void> {
        for (const auto& s : sems) {
            std::set<std::string> left;
            auto no_contenders = [&] { return (left = contender_sessions(s)).empty(); };
            const bool none = co_await eventually(no_contenders, 5s);
            BOOST_TEST(none, left.size() << " contender key(s) left under " << s);
            BOOST_TEST(read_semaphore_record(s).holders.empty(), "holders left in " << s << "/.lock");
        }
        co_await expect_no_sessions_named(prefix);
    });
}

BOOST_AUTO_TEST_CASE(cancelling_destroying_and_a_client_cancel_from_other_threads_leave_nothing_held)
{
    const std::string name = "chaos";
    const auto prefix = agent().unique_prefix(name);
    std::vector<std::string> keys;
    for (int k = 0; k < lock_keys; ++k)
        keys.push_back(prefix + "key" + std::to_string(k));
    const unsigned seed = case_seed(name.c_str());
    chaos_stats st;
    failures fresh;
    pending_work fresh_work;
    const auto t0 = clock_type::now();
    {
        asio::thread_pool pool(pool_threads);
        {
            watchdog dog(name, case_limit, [&] {
                return "rounds " + std::to_string(st.rounds_done.load()) + " of " +
                       std::to_string(chaos_workers * chaos_rounds) + ", workers left " +
                       std::to_string(st.work.count()) + ", callbacks left " + std::to_string(st.callbacks.count()) +
                       ", fresh acquires left " + std::to_string(fresh_work.count());
            });
            std::optional<client> c;
            c.emplace(asio::make_strand(pool), lock_client(prefix));
            st.work.add(chaos_workers);
            for (int i = 0; i < chaos_workers; ++i)
                asio::co_spawn(asio::make_strand(pool),
                               chaos_worker(*c, keys[i % lock_keys], i % lock_keys, st, chaos_rounds, seed + i),
                               [&st, i](std::exception_ptr e) {
                                   if (e) {
                                       st.fail.add("chaos worker " + std::to_string(i) + " threw: " + text_of(e));
                                       st.halfway.set(); // its rounds will never be done: do not wait for them
                                   }
                                   st.work.done();
                               });
            st.halfway.wait();
            // Once, from this thread (not one of the pool's), in the middle of it all.
            st.client_cancelled.store(true);
            c->cancel();
            st.work.wait();
            st.callbacks.wait(); // every acquire of a destroyed lock completed
            fresh_work.add(lock_keys);
            for (const auto& key : keys)
                asio::co_spawn(asio::make_strand(pool), acquire_fresh(*c, key, fresh),
                               worker_done(fresh, fresh_work, "fresh acquire of " + key));
            fresh_work.wait();
            c.reset();
        }
        join_within_limit(pool, name);
    }
    BOOST_TEST_MESSAGE(name << ": " << st.rounds_done.load() << " rounds by " << chaos_workers << " coroutines on "
                            << st.threads.size() << " pool threads in " << ms_since(t0) << " ms: acquired "
                            << st.acquired.load() << ", acquire cancelled " << st.acquire_aborted.load()
                            << ", destroyed while pending " << st.destroyed_pending.load()
                            << " (won before the destroy " << st.won_before_destroy.load() << "), try_acquire took "
                            << st.try_taken.load() << " / refused " << st.try_refused.load()
                            << ", destroyed while held " << st.destroyed_held.load() << ", lost() cancelled "
                            << st.lost_cancelled.load() << " / ended by cancel() " << st.lost_ended.load()
                            << ", errors after cancel() " << st.tolerated.load());
    for (const auto& [what, n] : st.errors)
        BOOST_TEST_MESSAGE(name << ": after cancel(): " << n << " x " << what);
    st.fail.report(name);
    fresh.report(name + " (fresh locks afterwards)");
    BOOST_TEST(st.rounds_done.load() == chaos_workers * chaos_rounds);
    BOOST_TEST(st.threads.size() >= 2u, "the workers ran on " << st.threads.size() << " thread(s) only");
    expect_nothing_left(prefix, keys);
}

BOOST_AUTO_TEST_SUITE_END()
