// colock::election: a colock::lock (leadership) plus a kv_watch (observation), and the proclaim
// transaction. The decisions are in recipes/election_state.

#include <colock/consul/kv_watch.hpp>
#include <colock/election.hpp>
#include <colock/lock.hpp>

#include "consul/client_impl.hpp"
#include "consul/op.hpp"
#include "consul/ops.hpp"
#include "recipes/election_state.hpp"
#include "recipes/hold_support.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace colock::detail {

namespace asio = boost::asio;
using consul::detail::client_impl;

namespace {

using leader_result = std::tuple<error_code, std::optional<leader_info>>;

lock_options leadership_options(lock_options o)
{
    o.reentrant = false; // campaign() while leading is errc::already_held
    o.value.clear();
    return o;
}

consul::kv_watch_options watch_options(const election_options& o)
{
    consul::kv_watch_options w;
    w.wait = o.observe_wait;
    w.request = o.lock.request;
    w.request.diag = nullptr;
    return w;
}

} // namespace

struct election_impl {
    election_impl(consul::client& c, std::string k, election_options o)
        : cimpl(c.impl()), key(k), options(std::move(o)),
          leadership(std::make_unique<colock::lock>(c, k, leadership_options(options.lock))),
          watch(std::make_unique<consul::kv_watch>(c, k, watch_options(options)))
    {
    }

    std::shared_ptr<client_impl> cimpl;
    std::string key;
    election_options options;
    // Both are destroyed by ~election (which cancels what they have pending) while operations that
    // awaited them may still hold this object: after a suspension, check `closed` before using them.
    std::unique_ptr<colock::lock> leadership;
    std::unique_ptr<consul::kv_watch> watch;
    bool closed = false;
    bool campaigning = false;
    bool proclaiming = false;
    bool observing = false;
    bool observed = false;                // observe() delivered at least once
    std::optional<leader_info> last_seen; // what observe() delivered last

    std::string tag() const { return "election '" + key + "'"; }
};

namespace {

asio::awaitable<std::tuple<error_code>> campaign_body(std::shared_ptr<election_impl> self, std::string value)
{
    auto& s = *self;
    if (s.closed)
        co_return std::tuple{make_error_code(asio::error::operation_aborted)};
    if (s.leadership->is_held())
        co_return std::tuple{make_error_code(errc::already_held)};
    if (s.campaigning)
        co_return std::tuple{make_error_code(errc::operation_in_progress)};
    s.campaigning = true;
    s.leadership->set_value(std::move(value));
    auto [ec] = co_await s.leadership->acquire(use_tuple);
    s.campaigning = false;
    if (!ec && s.cimpl->log.enabled(logger::level::debug) && !s.closed)
        s.cimpl->debug(s.tag() + ": leading, fencing token " + std::to_string(s.leadership->fencing_token()));
    co_return std::tuple{ec};
}

asio::awaitable<std::tuple<error_code>> proclaim_body(std::shared_ptr<election_impl> self, std::string value)
{
    auto& s = *self;
    auto cs = co_await asio::this_coro::cancellation_state;
    if (s.closed || cs.cancelled() != asio::cancellation_type::none)
        co_return std::tuple{make_error_code(asio::error::operation_aborted)};
    if (s.proclaiming)
        co_return std::tuple{make_error_code(errc::operation_in_progress)};
    const auto holder = s.leadership->session_id();
    if (!s.leadership->is_held() || !holder)
        co_return std::tuple{make_error_code(errc::not_held)};
    const auto term = s.leadership->lock_index();
    const auto token = s.leadership->fencing_token();

    s.proclaiming = true;
    auto ops = proclaim_ops(s.key, *holder, value);
    const auto wo = recipe_write_options(s.options.lock.request);
    auto [ec, r] = co_await uncancellable(consul::detail::txn_body(s.cimpl, std::move(ops), wo));
    s.proclaiming = false;
    if (ec)
        co_return std::tuple{ec};
    const auto outcome = proclaim_outcome(r, *holder, term);
    if (outcome) {
        s.cimpl->warn(s.tag() + ": proclaim refused: " + outcome.message());
        co_return std::tuple{outcome};
    }
    // The release of this term writes the proclaimed value (unless the term ended meanwhile).
    if (!s.closed && s.leadership->fencing_token() == token)
        s.leadership->set_value(std::move(value));
    co_return std::tuple{error_code{}};
}

asio::awaitable<leader_result> leader_body(std::shared_ptr<election_impl> self)
{
    auto& s = *self;
    auto q = recipe_query_options(s.options.lock.request);
    q.consistency = consul::consistency_mode::consistent;
    auto [ec, r] = co_await consul::detail::kv_get_body(s.cimpl, s.key, q);
    if (ec)
        co_return leader_result{ec, std::nullopt};
    auto reading = leader_of(r.entry);
    co_return leader_result{reading.ec, std::move(reading.leader)};
}

asio::awaitable<leader_result> observe_body(std::shared_ptr<election_impl> self)
{
    auto& s = *self;
    if (s.closed)
        co_return leader_result{make_error_code(asio::error::operation_aborted), std::nullopt};
    if (s.observing)
        co_return leader_result{make_error_code(errc::operation_in_progress), std::nullopt};
    s.observing = true;
    struct done_observing {
        election_impl& s;
        ~done_observing() { s.observing = false; }
    } guard{s};
    for (;;) {
        auto [ec, r] = co_await s.watch->next(use_tuple);
        if (s.closed || ec == asio::error::operation_aborted)
            co_return leader_result{make_error_code(asio::error::operation_aborted), std::nullopt};
        if (ec) {
            if (!is_retryable(ec) && ec != errc::request_timeout)
                co_return leader_result{ec, std::nullopt};
            continue; // the watch backs off before its next query
        }
        auto reading = leader_of(r.entry);
        if (reading.ec)
            co_return leader_result{reading.ec, std::nullopt};
        if (s.observed && reading.leader == s.last_seen)
            continue; // a write that changed nothing we report (e.g. a release's value)
        s.observed = true;
        s.last_seen = reading.leader;
        co_return leader_result{error_code{}, std::move(reading.leader)};
    }
}

} // namespace
} // namespace colock::detail

namespace colock {

namespace asio = boost::asio;

election::election(consul::client& c, std::string key, election_options opts)
    : executor_(c.get_executor()), impl_(std::make_shared<detail::election_impl>(c, std::move(key), std::move(opts)))
{
}

election::~election()
{
    // On the strand (at once when already there), where the election's operations run.
    asio::dispatch(impl_->cimpl->executor, [impl = impl_] {
        impl->closed = true;
        impl->leadership.reset(); // cancels a pending campaign; resigns in the background when leading
        impl->watch.reset();      // cancels a pending observe
    });
}

void election::campaign_impl(std::string value, asio::any_completion_handler<void(error_code)> h)
{
    consul::detail::launch(impl_->cimpl, detail::campaign_body(impl_, std::move(value)), std::move(h));
}

void election::proclaim_impl(std::string value, asio::any_completion_handler<void(error_code)> h)
{
    consul::detail::launch(impl_->cimpl, detail::proclaim_body(impl_, std::move(value)), std::move(h));
}

void election::resign_impl(asio::any_completion_handler<void(error_code)> h) { impl_->leadership->release(std::move(h)); }

void election::leader_impl(asio::any_completion_handler<void(error_code, std::optional<leader_info>)> h)
{
    consul::detail::launch(impl_->cimpl, detail::leader_body(impl_), std::move(h));
}

void election::observe_impl(asio::any_completion_handler<void(error_code, std::optional<leader_info>)> h)
{
    consul::detail::launch(impl_->cimpl, detail::observe_body(impl_), std::move(h));
}

void election::lost_impl(asio::any_completion_handler<void(error_code, error_code)> h)
{
    impl_->leadership->lost(std::move(h));
}

bool election::is_leader() const noexcept { return impl_->leadership->is_held(); }

std::uint64_t election::fencing_token() const noexcept { return impl_->leadership->fencing_token(); }

const std::string& election::key() const noexcept { return impl_->key; }

const election_options& election::options() const noexcept { return impl_->options; }

} // namespace colock
