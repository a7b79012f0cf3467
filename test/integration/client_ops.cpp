// Every typed operation of consul::client against the real agent (Tier B).

#include <colock/consul/client.hpp>
#include <colock/consul/kv_watch.hpp>

#include "async_test.hpp"
#include "consul_agent.hpp"
#include "test_options.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_future.hpp>

#include <future>
#include <thread>

namespace asio = boost::asio;
using namespace colock;
using namespace colock::consul;
using colock::test::consul_agent;
using colock::test::consul_agent_fixture;
using colock::test::real_agent_options;
using colock::test::run_async;
using colock::test::sleep_for;
using namespace std::chrono_literals;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

BOOST_TEST_GLOBAL_FIXTURE(consul_agent_fixture);

namespace {

session_options test_session(std::string name)
{
    session_options s;
    s.name = std::move(name);
    s.ttl = 10s;
    s.lock_delay = 0ms;
    s.node_checks = std::vector<std::string>{}; // liveness from the TTL only
    return s;
}

} // namespace

BOOST_AUTO_TEST_SUITE(test_client_ops)

BOOST_AUTO_TEST_CASE(kv_put_then_get_round_trips_binary_value_and_uint64_flags)
{
    const auto prefix = consul_agent::instance().unique_prefix("kv_round_trip");
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        client c(ioc.get_executor(), real_agent_options());
        const std::string value("bin\0ary\xff", 8);
        const std::uint64_t flags = 16210313421097356768ull; // above INT64_MAX
        bool ok = co_await c.kv_put(prefix + "k", value, kv_put_options(flags));
        BOOST_TEST(ok);
        auto r = co_await c.kv_get(prefix + "k");
        BOOST_TEST_REQUIRE(r.entry.has_value());
        BOOST_TEST(r.entry->value == value);
        BOOST_TEST(r.entry->flags == flags);
        BOOST_TEST(r.entry->key == prefix + "k");
        BOOST_TEST(!r.entry->session.has_value());
        BOOST_TEST(r.meta.index == r.entry->modify_index);
        BOOST_TEST(r.meta.known_leader);
    });
}

BOOST_AUTO_TEST_CASE(kv_get_of_missing_key_has_no_entry_and_an_index)
{
    const auto prefix = consul_agent::instance().unique_prefix("kv_missing");
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        client c(ioc.get_executor(), real_agent_options());
        auto r = co_await c.kv_get(prefix + "absent");
        BOOST_TEST(!r.entry.has_value());
        BOOST_TEST(r.meta.index > 0u);
    });
}

BOOST_AUTO_TEST_CASE(kv_list_and_keys_stay_inside_the_prefix)
{
    const auto prefix = consul_agent::instance().unique_prefix("kv_list");
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        client c(ioc.get_executor(), real_agent_options());
        (void)co_await c.kv_put(prefix + "p/a", "1");
        (void)co_await c.kv_put(prefix + "p/b/c", "2");
        (void)co_await c.kv_put(prefix + "p2/x", "sibling");
        auto list = co_await c.kv_list(prefix + "p/");
        BOOST_TEST_REQUIRE(list.entries.size() == 2u);
        BOOST_TEST(list.entries[0].key == prefix + "p/a");
        BOOST_TEST(list.entries[1].key == prefix + "p/b/c");
        auto keys = co_await c.kv_keys(prefix + "p/", "/");
        BOOST_TEST_REQUIRE(keys.keys.size() == 2u);
        BOOST_TEST(keys.keys[0] == prefix + "p/a");
        BOOST_TEST(keys.keys[1] == prefix + "p/b/");
        auto none = co_await c.kv_list(prefix + "nothing/");
        BOOST_TEST(none.entries.empty());
        BOOST_TEST(none.meta.index > 0u);
    });
}

BOOST_AUTO_TEST_CASE(kv_cas_put_and_delete_follow_modify_index)
{
    const auto prefix = consul_agent::instance().unique_prefix("kv_cas");
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        client c(ioc.get_executor(), real_agent_options());
        const auto key = prefix + "k";
        BOOST_TEST(co_await c.kv_put(key, "v1", kv_put_options::with_cas(0)));  // create only
        BOOST_TEST(!co_await c.kv_put(key, "v2", kv_put_options::with_cas(0))); // exists now
        auto r = co_await c.kv_get(key);
        BOOST_TEST(!co_await c.kv_put(key, "v3", kv_put_options::with_cas(r.entry->modify_index + 1000)));
        BOOST_TEST(co_await c.kv_put(key, "v3", kv_put_options::with_cas(r.entry->modify_index)));
        auto r2 = co_await c.kv_get(key);
        BOOST_TEST(r2.entry->value == "v3");
        BOOST_TEST(!co_await c.kv_delete(key, kv_delete_options::with_cas(r.entry->modify_index)));
        BOOST_TEST(co_await c.kv_delete(key, kv_delete_options::with_cas(r2.entry->modify_index)));
        BOOST_TEST(!(co_await c.kv_get(key)).entry.has_value());
        (void)co_await c.kv_put(prefix + "t/1", "");
        (void)co_await c.kv_put(prefix + "t/2", "");
        BOOST_TEST(co_await c.kv_delete(prefix + "t/", kv_delete_options::recursive()));
        BOOST_TEST((co_await c.kv_list(prefix + "t/")).entries.empty());
    });
}

BOOST_AUTO_TEST_CASE(kv_acquire_and_release_set_and_clear_the_session)
{
    const auto prefix = consul_agent::instance().unique_prefix("kv_acquire");
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        client c(ioc.get_executor(), real_agent_options());
        auto a = co_await c.session_create(test_session("colock-test-acquire-a"));
        auto b = co_await c.session_create(test_session("colock-test-acquire-b"));
        const auto key = prefix + "lock";
        BOOST_TEST(co_await c.kv_put(key, "a", kv_put_options::with_acquire(a, 7)));
        BOOST_TEST(!co_await c.kv_put(key, "b", kv_put_options::with_acquire(b, 7))); // held by a
        auto held = co_await c.kv_get(key);
        BOOST_TEST_REQUIRE(held.entry->session.has_value());
        BOOST_TEST(*held.entry->session == a);
        BOOST_TEST(held.entry->lock_index == 1u);
        BOOST_TEST(!co_await c.kv_put(key, "b", kv_put_options::with_release(b, 7)));
        BOOST_TEST(co_await c.kv_put(key, "a", kv_put_options::with_release(a, 7)));
        auto freed = co_await c.kv_get(key);
        BOOST_TEST(!freed.entry->session.has_value()); // Consul omits Session when unlocked
        BOOST_TEST(freed.entry->flags == 7u);
        BOOST_TEST(co_await c.session_destroy(a));
        BOOST_TEST(co_await c.session_destroy(b));
    });
}

BOOST_AUTO_TEST_CASE(txn_lock_returns_the_modify_index_and_rolls_back_when_held)
{
    const auto prefix = consul_agent::instance().unique_prefix("txn");
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        client c(ioc.get_executor(), real_agent_options());
        auto a = co_await c.session_create(test_session("colock-test-txn-a"));
        auto b = co_await c.session_create(test_session("colock-test-txn-b"));
        const auto key = prefix + "lock";
        const std::uint64_t flag = 0x2ddccbc058a50c18ull;
        std::vector<txn_op> ops1{txn_op::lock(key, a, "holder-a", flag)};
        auto first = co_await c.txn(std::move(ops1));
        BOOST_TEST_REQUIRE(first.committed);
        BOOST_TEST_REQUIRE(first.results.size() == 1u);
        BOOST_TEST(first.results[0].modify_index > 0u);
        BOOST_TEST(first.results[0].flags == flag);

        std::vector<txn_op> ops2{txn_op::lock(key, b, "holder-b", flag)};
        auto conflict = co_await c.txn(std::move(ops2));
        BOOST_TEST(!conflict.committed);
        BOOST_TEST_REQUIRE(conflict.errors.size() == 1u);
        BOOST_TEST(conflict.errors[0].op_index == 0u);
        BOOST_TEST(conflict.errors[0].what.find("already held") != std::string::npos);

        // The holder's session can lock again: with a changed value that is a write, so a fresh,
        // larger ModifyIndex (a new fencing token) and the same LockIndex.
        std::vector<txn_op> ops3{txn_op::lock(key, a, "holder-a2", flag)};
        auto again = co_await c.txn(std::move(ops3));
        BOOST_TEST_REQUIRE(again.committed);
        BOOST_TEST(again.results[0].modify_index > first.results[0].modify_index);
        BOOST_TEST(again.results[0].lock_index == first.results[0].lock_index);

        std::vector<txn_op> ops4{txn_op::get(key), txn_op::check_session(key, a)};
        auto read = co_await c.txn(std::move(ops4));
        BOOST_TEST_REQUIRE(read.committed);
        BOOST_TEST_REQUIRE(read.results.size() >= 1u);
        BOOST_TEST(read.results[0].value == "holder-a2");

        std::vector<txn_op> ops5{txn_op::get(prefix + "absent")};
        auto missing = co_await c.txn(std::move(ops5));
        BOOST_TEST(!missing.committed);

        std::vector<txn_op> ops6{txn_op::unlock(key, a, "", flag)};
        auto unlock = co_await c.txn(std::move(ops6));
        BOOST_TEST(unlock.committed);
        auto after = co_await c.kv_get(key);
        BOOST_TEST(!after.entry->session.has_value());
        std::vector<txn_op> ops7{txn_op::set(prefix + "x", "1"), txn_op::delete_key(prefix + "x")};
        auto set_and_delete = co_await c.txn(std::move(ops7));
        BOOST_TEST(set_and_delete.committed);
        (void)co_await c.session_destroy(a);
        (void)co_await c.session_destroy(b);
    });
}

BOOST_AUTO_TEST_CASE(txn_with_more_than_64_operations_is_refused_before_io)
{
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        client c(ioc.get_executor(), real_agent_options());
        std::vector<txn_op> ops(65, txn_op::get("k"));
        auto [ec, r] = co_await c.txn(ops, {}, tuple_awaitable);
        BOOST_TEST(ec == errc::too_many_operations);
    });
}

BOOST_AUTO_TEST_CASE(session_create_info_renew_list_destroy)
{
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        client c(ioc.get_executor(), real_agent_options());
        auto opts = test_session("colock-test-session-ops");
        opts.behavior = session_behavior::delete_keys;
        auto id = co_await c.session_create(opts);
        BOOST_TEST(!id.empty());
        auto info = co_await c.session_info(id);
        BOOST_TEST_REQUIRE(info.entry.has_value());
        BOOST_TEST(info.entry->name == "colock-test-session-ops");
        BOOST_TEST(info.entry->lock_delay.count() == 0);
        BOOST_TEST(info.entry->ttl == 10s);
        BOOST_TEST(info.entry->behavior == session_behavior::delete_keys);
        BOOST_TEST(info.entry->node_checks.empty());
        auto renewed = co_await c.session_renew(id);
        BOOST_TEST(renewed.id == id);
        BOOST_TEST(renewed.ttl >= 10s);
        auto list = co_await c.session_list();
        BOOST_TEST(std::any_of(list.sessions.begin(), list.sessions.end(),
                               [&](const session_entry& s) { return s.id == id; }));
        BOOST_TEST(co_await c.session_destroy(id));
        auto gone = co_await c.session_info(id);
        BOOST_TEST(!gone.entry.has_value());
        auto [ec, entry] = co_await c.session_renew(id, {}, tuple_awaitable);
        BOOST_TEST(ec == errc::session_invalidated);
        BOOST_TEST(co_await c.session_destroy(id)); // idempotent
    });
}

BOOST_AUTO_TEST_CASE(session_with_default_lock_delay_and_checks_gets_consul_defaults)
{
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        client c(ioc.get_executor(), real_agent_options());
        session_options opts;
        opts.name = "colock-test-defaults";
        auto id = co_await c.session_create(opts);
        auto info = co_await c.session_info(id);
        BOOST_TEST_REQUIRE(info.entry.has_value());
        BOOST_TEST(info.entry->lock_delay == 15s);
        BOOST_TEST(info.entry->node_checks == std::vector<std::string>{"serfHealth"});
        (void)co_await c.session_destroy(id);
    });
}

BOOST_AUTO_TEST_CASE(status_leader_names_the_agent)
{
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        client c(ioc.get_executor(), real_agent_options());
        auto leader = co_await c.status_leader();
        BOOST_TEST(leader.find("127.0.0.1:") == 0u);
    });
}

BOOST_AUTO_TEST_CASE(blocking_get_wakes_on_a_change_and_not_before)
{
    const auto prefix = consul_agent::instance().unique_prefix("blocking");
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        using namespace asio::experimental::awaitable_operators;
        client c(ioc.get_executor(), real_agent_options());
        const auto key = prefix + "k";
        (void)co_await c.kv_put(key, "v1");
        auto first = co_await c.kv_get(key);

        // Unchanged key: the query is held for the wait (1 s, plus up to 1/16 jitter).
        const auto t0 = std::chrono::steady_clock::now();
        query_options q;
        q.index = first.meta.index;
        q.wait = 1s;
        auto same = co_await c.kv_get(key, q);
        const auto held = std::chrono::steady_clock::now() - t0;
        BOOST_TEST(same.meta.index == first.meta.index);
        BOOST_TEST((held >= 950ms));

        // A write wakes it long before its 10 s wait.
        q.wait = 10s;
        bool written = false;
        auto writer = [&]() -> asio::awaitable<void> {
            co_await sleep_for(300ms);
            written = true;
            (void)co_await c.kv_put(key, "v2");
        };
        const auto t1 = std::chrono::steady_clock::now();
        kv_get_result changed = co_await (c.kv_get(key, q, asio::use_awaitable) && writer());
        const auto waited = std::chrono::steady_clock::now() - t1;
        BOOST_TEST(written);
        BOOST_TEST(changed.entry->value == "v2");
        BOOST_TEST(changed.meta.index > first.meta.index);
        BOOST_TEST((waited >= 250ms));
        BOOST_TEST((waited < 5s));
    });
}

BOOST_AUTO_TEST_CASE(kv_watch_delivers_the_current_state_then_each_change)
{
    const auto prefix = consul_agent::instance().unique_prefix("watch");
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        client c(ioc.get_executor(), real_agent_options());
        const auto key = prefix + "k";
        kv_watch w(c, key, {.wait = 5s});
        auto initial = co_await w.next();
        BOOST_TEST(!initial.entry.has_value());
        auto writer = [&]() -> asio::awaitable<void> {
            co_await sleep_for(200ms);
            (void)co_await c.kv_put(key, "one");
        };
        asio::co_spawn(ioc, writer(), asio::detached);
        auto created = co_await w.next();
        BOOST_TEST_REQUIRE(created.entry.has_value());
        BOOST_TEST(created.entry->value == "one");
        BOOST_TEST(w.index() == created.meta.index);
        asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
            co_await sleep_for(200ms);
            (void)co_await c.kv_delete(key);
        }, asio::detached);
        auto deleted = co_await w.next();
        BOOST_TEST(!deleted.entry.has_value());
        BOOST_TEST(deleted.meta.index > created.meta.index);
    });
}

BOOST_AUTO_TEST_CASE(invalid_arguments_fail_without_io_and_never_inline)
{
    asio::io_context ioc;
    client c(ioc.get_executor(), real_agent_options());
    int completed = 0;
    error_code e1, e2, e3;
    c.kv_get("", {}, [&](error_code ec, kv_get_result) { e1 = ec; ++completed; });
    auto conflicting = kv_put_options::with_cas(1);
    conflicting.acquire = session_id("abc");
    c.kv_put("k", "v", conflicting, {}, [&](error_code ec, bool) { e2 = ec; ++completed; });
    c.kv_put("/leading-slash", "v", {}, {}, [&](error_code ec, bool) { e3 = ec; ++completed; });
    BOOST_TEST(completed == 0); // nothing completes inside the initiating call
    ioc.run_for(5s);
    BOOST_TEST(completed == 3);
    BOOST_TEST(e1 == errc::invalid_argument);
    BOOST_TEST(e2 == errc::invalid_argument);
    BOOST_TEST(e3 == errc::invalid_argument);
}

BOOST_AUTO_TEST_CASE(operations_work_with_callbacks_futures_and_as_tuple)
{
    const auto prefix = consul_agent::instance().unique_prefix("tokens");
    asio::io_context ioc;
    client c(ioc.get_executor(), real_agent_options());

    // A callback.
    error_code put_ec;
    bool put_ok = false, put_ran = false;
    c.kv_put(prefix + "cb", "x", {}, {}, [&](error_code ec, bool ok) {
        put_ec = ec;
        put_ok = ok;
        put_ran = true;
    });
    ioc.run_for(10s);
    BOOST_TEST_REQUIRE(put_ran);
    BOOST_TEST(!put_ec);
    BOOST_TEST(put_ok);

    // as_tuple around a callback: errors arrive as values.
    error_code renew_ec;
    bool renew_ran = false;
    c.session_renew(session_id("00000000-0000-0000-0000-000000000000"), {},
                    asio::as_tuple([&](std::tuple<error_code, session_entry> r) {
                        renew_ec = std::get<0>(r);
                        renew_ran = true;
                    }));
    ioc.restart();
    ioc.run_for(10s);
    BOOST_TEST_REQUIRE(renew_ran);
    BOOST_TEST(renew_ec == errc::session_invalidated);

    // use_future: started here, completed by the io_context running on another thread.
    std::future<kv_get_result> got = c.kv_get(prefix + "cb", {}, asio::use_future);
    ioc.restart();
    std::thread runner([&] { ioc.run_for(10s); });
    BOOST_TEST_REQUIRE((got.wait_for(10s) == std::future_status::ready));
    BOOST_TEST(got.get().entry->value == "x");
    std::future<bool> failed = c.kv_put("", "x", {}, {}, asio::use_future);
    runner.join();
    ioc.restart();
    ioc.run_for(5s);
    BOOST_CHECK_THROW(failed.get(), boost::system::system_error);
}

BOOST_AUTO_TEST_CASE(cancelling_a_blocking_get_completes_promptly_with_operation_aborted)
{
    const auto prefix = consul_agent::instance().unique_prefix("cancel");
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        client c(ioc.get_executor(), real_agent_options());
        const auto key = prefix + "k";
        (void)co_await c.kv_put(key, "v");
        auto first = co_await c.kv_get(key);
        query_options q;
        q.index = first.meta.index;
        q.wait = 30s;
        asio::cancellation_signal signal;
        asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
            co_await sleep_for(200ms);
            signal.emit(asio::cancellation_type::terminal);
        }, asio::detached);
        const auto t0 = std::chrono::steady_clock::now();
        auto [ec, r] = co_await c.kv_get(key, q, asio::bind_cancellation_slot(signal.slot(), tuple_awaitable));
        const auto took = std::chrono::steady_clock::now() - t0;
        BOOST_TEST(ec == asio::error::operation_aborted);
        BOOST_TEST((took < 2s));

        // client.cancel() aborts whatever is pending, too.
        asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
            co_await sleep_for(200ms);
            c.cancel();
        }, asio::detached);
        const auto t1 = std::chrono::steady_clock::now();
        auto [ec2, r2] = co_await c.kv_get(key, q, tuple_awaitable);
        BOOST_TEST(ec2 == asio::error::operation_aborted);
        BOOST_TEST((std::chrono::steady_clock::now() - t1 < 2s));
        // And the client still works afterwards.
        auto again = co_await c.kv_get(key);
        BOOST_TEST(again.entry->value == "v");
    });
}

BOOST_AUTO_TEST_CASE(diagnostics_carry_consuls_text_on_http_errors)
{
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        client c(ioc.get_executor(), real_agent_options());
        diagnostics diag;
        write_options wo;
        wo.diag = &diag;
        session_options bad;
        bad.ttl = 500ms; // below session_ttl_min: Consul answers 500 "Invalid Session TTL"
        auto [ec, id] = co_await c.session_create(bad, wo, tuple_awaitable);
        BOOST_TEST((ec.category() == http_category()));
        BOOST_TEST(ec.value() == 500);
        BOOST_TEST(diag.http_status == 500u);
        BOOST_TEST(diag.server_message.find("Invalid Session TTL") != std::string::npos);
    });
}

BOOST_AUTO_TEST_CASE(log_lines_name_sessions_and_keys_but_never_the_token)
{
    const auto prefix = consul_agent::instance().unique_prefix("logging");
    std::vector<std::string> lines;
    colock::logger log;
    log.min_level = colock::logger::level::debug;
    log.sink = [&](colock::logger::level, std::string_view line) { lines.emplace_back(line); };
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        auto o = real_agent_options();
        o.token = "s3cr3t-t0k3n-value"; // the dev agent has no ACLs: it accepts and ignores it
        client c(ioc.get_executor(), o, log);
        auto id = co_await c.session_create(test_session("colock-test-logging"));
        (void)co_await c.kv_put(prefix + "k", "v");
        session_options bad;
        bad.ttl = 500ms;
        auto [ec, unused] = co_await c.session_create(bad, {}, tuple_awaitable); // a logged HTTP 500
        BOOST_TEST(ec.failed());
        (void)co_await c.session_destroy(id);
    });
    BOOST_TEST_REQUIRE(!lines.empty());
    bool created = false, refused = false;
    for (const auto& line : lines) {
        BOOST_TEST(line.find("s3cr3t") == std::string::npos, "a log line shows the token: " << line);
        created = created || (line.find("created") != std::string::npos && line.find("colock-test-logging") != std::string::npos);
        refused = refused || line.find("Invalid Session TTL") != std::string::npos;
    }
    BOOST_TEST(created);
    BOOST_TEST(refused);
}

BOOST_AUTO_TEST_SUITE_END()
