// Election failover rounds (see election.hpp).

#include "election.hpp"

#include "log.hpp"

#include <colock/consul/client.hpp>
#include <colock/consul/session.hpp>
#include <colock/election.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <stdexcept>
#include <utility>

namespace colock::bench {

namespace asio = boost::asio;

namespace {

asio::awaitable<void> pause(std::chrono::milliseconds d)
{
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::use_awaitable);
}

} // namespace

asio::awaitable<election_result> run_election_failover(consul::client_options options, election_settings s)
{
    auto ex = co_await asio::this_coro::executor;
    options.shared_session.name = "colock bench election";
    options.shared_session.lock_delay = std::chrono::milliseconds(0);
    options.shared_session.node_checks = std::vector<std::string>{};
    consul::client a(ex, options, bench_logger());
    consul::client b(ex, options, bench_logger());
    consul::client operator_client(ex, options, bench_logger());
    election ea(a, s.key), eb(b, s.key);
    election* leader = &ea;
    election* waiter = &eb;
    co_await leader->campaign("a");

    election_result r;
    for (int round = 0; round < 2 * s.rounds; ++round) {
        const bool destroy = round % 2 == 1;
        // The waiter campaigns; its completion is stamped by the handler, not by a later resumption.
        bool won = false;
        error_code won_ec;
        clock_type::time_point won_at;
        waiter->campaign(waiter == &ea ? "a" : "b", [&](error_code ec) {
            won_at = clock_type::now();
            won_ec = ec;
            won = true;
        });
        co_await pause(s.settle);
        const auto t0 = clock_type::now();
        if (destroy) {
            auto sid = (leader == &ea ? a : b).shared_session().id();
            if (!sid)
                throw std::runtime_error("election failover: the leader has no session");
            co_await operator_client.session_destroy(*sid);
        } else {
            co_await leader->resign();
        }
        while (!won)
            co_await pause(std::chrono::milliseconds(1));
        if (won_ec)
            throw std::runtime_error("election failover: campaign failed: " + won_ec.message());
        (destroy ? r.after_destroy : r.after_resign).add(won_at - t0);
        if (destroy)
            co_await leader->lost(); // the dead leader has noticed; its next campaign starts a new session
        std::swap(leader, waiter);
    }
    co_await leader->resign();
    co_await a.shared_session().close();
    co_await b.shared_session().close();
    co_return r;
}

} // namespace colock::bench
