// Leader election with a lock: three candidates (three clients, as if three processes) campaign for
// one key. The holder is the leader; its fencing token numbers its term. Each leader does some
// fenced work, then resigns, and a waiting candidate takes over. Run it against an agent:
//
//     CONSUL_HTTP_ADDR=127.0.0.1:8500 ./03_leader_election
//
// It exits with 0 only when there was never more than one leader, every candidate led once, each
// with a larger token than the one before, and the fenced store refused a stale leader.

#include <colock/colock.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdint>
#include <exception>
#include <iostream>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <variant>
#include <vector>

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using namespace colock::consul;
using namespace std::chrono_literals;

// Stops the example with an error when what it demonstrates did not happen.
void check(bool ok, const char* what)
{
    if (!ok)
        throw std::runtime_error(std::string("expected: ") + what);
}

// What the leader protects, e.g. a database: it refuses writes with a token smaller than the largest
// it has seen, so a deposed leader that wakes up late cannot overwrite its successor's work.
class fenced_store {
public:
    bool write(std::uint64_t fencing_token, const std::string& text)
    {
        if (fencing_token < highest_token_)
            return false;
        highest_token_ = fencing_token;
        entries_.push_back(text);
        return true;
    }
    std::size_t size() const { return entries_.size(); }

private:
    std::uint64_t highest_token_ = 0;
    std::vector<std::string> entries_;
};

// What the example records to check itself.
struct history {
    std::string current_leader;          // empty: nobody leads right now
    std::vector<std::string> leaders;    // in order of leadership
    std::vector<std::uint64_t> tokens;   // the fencing token of each term
};

// The leader's work: a few writes to the store, each with the term's fencing token. True when the
// store accepted them all.
asio::awaitable<bool> lead(const std::string& name, std::uint64_t token, fenced_store& store)
{
    asio::steady_timer tick(co_await asio::this_coro::executor);
    for (int i = 1; i <= 3; ++i) {
        tick.expires_after(50ms);
        co_await tick.async_wait(asio::use_awaitable);
        if (!store.write(token, name + " #" + std::to_string(i)))
            co_return false;
    }
    co_return true;
}

asio::awaitable<void> candidate(client& consul, std::string key, std::string name, fenced_store& store,
                                history& h)
{
    // The key's value names the leader, so anyone can read who leads (and, e.g., its address).
    colock::lock_options opts;
    opts.value = name;
    colock::lock leadership(consul, key, opts);

    // Campaign: wait until this candidate holds the key. Waiting costs one blocking query.
    co_await leadership.acquire();
    const std::uint64_t token = leadership.fencing_token();
    check(h.current_leader.empty(), "never two leaders at once");
    h.current_leader = name;
    h.leaders.push_back(name);
    h.tokens.push_back(token);
    std::cout << name << " leads, fencing token " << token << '\n';

    // What the other candidates see in Consul.
    kv_get_result seen = co_await consul.kv_get(key);
    check(seen.entry && seen.entry->value == name, "the key names the current leader");

    // Work while leader, and stop at once if leadership is lost: a loss completes lost()
    // successfully, with the reason as its value, so `||` ends the work.
    auto result = co_await (lead(name, token, store) || leadership.lost(asio::use_awaitable));
    check(result.index() == 0, "leadership is not lost while leading");
    check(std::get<0>(result), "the store accepts the leader's writes");

    // Resign: stop acting as leader first, then release the key; the next candidate takes over.
    h.current_leader.clear();
    co_await leadership.release();
    std::cout << name << " resigned\n";

    co_await consul.shared_session().close(); // leave no session behind
}

asio::awaitable<void> demo(client& a, client& b, client& c)
{
    const std::string prefix = "colock-examples/" + std::to_string(::getpid()) + "/";
    const std::string key = prefix + "service/leader";
    fenced_store store;
    history h;

    // All three campaign at once; `&&` waits for all of them (and stops all if one fails).
    co_await (candidate(a, key, "alpha", store, h) && candidate(b, key, "beta", store, h) &&
              candidate(c, key, "gamma", store, h));

    check(h.leaders.size() == 3, "each candidate led once");
    for (std::size_t i = 1; i < h.tokens.size(); ++i)
        check(h.tokens[i] > h.tokens[i - 1], "each term has a larger fencing token than the one before");
    check(store.size() == 9, "every leader wrote all of its entries");

    // A leader that slept through its term and wakes up late still has its old token: refused.
    check(!store.write(h.tokens.front(), h.leaders.front() + " (late)"), "the store refuses a stale leader");
    std::cout << "the store refused a late write from " << h.leaders.front() << " (token " << h.tokens.front()
              << ")\n";

    co_await a.kv_delete(prefix, kv_delete_options::recursive()); // leave no keys behind
    std::cout << "done\n";
}

int main()
{
    try {
        asio::io_context ioc;
        // One client per candidate: each has its own session, as separate processes would.
        const client_options config = client_options::from_env();
        client a(ioc.get_executor(), config);
        client b(ioc.get_executor(), config);
        client c(ioc.get_executor(), config);
        bool finished = false;
        asio::co_spawn(ioc, demo(a, b, c), [&](std::exception_ptr e) {
            if (e)
                std::rethrow_exception(e); // out of run_for(), into the catch below
            finished = true;
        });
        // A deadline, so that the example never hangs. run_for() returns early once all work is
        // done, background clean-up included.
        ioc.run_for(60s);
        if (!finished || !ioc.stopped()) {
            std::cerr << "error: still busy after 60 s\n";
            return 1;
        }
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << '\n';
        return 1;
    }
}
