// colock::election: a candidate campaigns, proclaims a new value while leading, and resigns; another
// object (in a real deployment, another process) observes every change, "no leader" included. Run it
// against an agent:
//
//     CONSUL_HTTP_ADDR=127.0.0.1:8500 ./06_election
//
// It exits with 0 only when the observer saw exactly: nobody, the leader, its proclaimed value, nobody.

#include <colock/colock.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <exception>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Prints what observe() delivered and returns the leader's value ("" when nobody leads).
std::string show(const std::optional<colock::leader_info>& who)
{
    std::cout << "observer: " << (who ? "leader says '" + who->value + "'" : std::string("no leader")) << '\n';
    return who ? who->value : "";
}

asio::awaitable<void> demo(colock::consul::client& consul)
{
    const std::string key = "colock-examples/" + std::to_string(::getpid()) + "/leader";
    colock::election candidate(consul, key);
    colock::election watcher(consul, key); // observes only; it never campaigns
    std::vector<std::string> seen;

    seen.push_back(show(co_await watcher.observe())); // the first call returns the current state at once

    co_await candidate.campaign("10.0.0.7:8080"); // waits until this candidate leads
    std::cout << "leading, fencing token " << candidate.fencing_token() << '\n';
    seen.push_back(show(co_await watcher.observe())); // each later call waits for the next change

    // Change what the leader tells the others, without a new term: the fencing token stays.
    const auto token = candidate.fencing_token();
    co_await candidate.proclaim("10.0.0.7:9090");
    if (candidate.fencing_token() != token)
        throw std::runtime_error("proclaim changed the term");
    seen.push_back(show(co_await watcher.observe()));

    co_await candidate.resign();
    seen.push_back(show(co_await watcher.observe()));

    co_await consul.kv_delete(key); // leave nothing behind
    co_await consul.shared_session().close();
    if (seen != std::vector<std::string>{"", "10.0.0.7:8080", "10.0.0.7:9090", ""})
        throw std::runtime_error("the observer did not see every state in order");
    std::cout << "done\n";
}

int main()
{
    try {
        asio::io_context ioc;
        colock::consul::client consul(ioc.get_executor(), colock::consul::client_options::from_env());
        bool finished = false;
        asio::co_spawn(ioc, demo(consul), [&](std::exception_ptr e) {
            if (e)
                std::rethrow_exception(e); // out of run_for(), into the catch below
            finished = true;
        });
        ioc.run_for(30s); // a deadline, so that the example never hangs
        if (!finished) {
            std::cerr << "error: still busy after 30 s\n";
            return 1;
        }
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << '\n';
        return 1;
    }
}
