// HTTPS to a real agent: the agent of this test process also serves TLS with a certificate made
// here by a throw-away CA; the client verifies it (CA file, host name) or is refused.

#include <colock/consul/client.hpp>

#include "async_test.hpp"
#include "consul_agent.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/error.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace asio = boost::asio;
using namespace colock;
using namespace colock::consul;
using colock::test::consul_agent;
using colock::test::run_async;
using namespace std::chrono_literals;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

namespace {

std::filesystem::path g_dir;

void run(const std::string& command)
{
    if (std::system((command + " >/dev/null 2>&1").c_str()) != 0)
        throw std::runtime_error("failed: " + command);
}

// A CA and a server certificate for 127.0.0.1 / localhost, made with the openssl command line
// during static initialisation: before any fixture can start the agent.
struct tls_material {
    tls_material()
    {
        char tmpl[] = "/tmp/colock-tls-XXXXXX";
        g_dir = ::mkdtemp(tmpl);
        const auto d = g_dir.string() + "/";
        std::ofstream(d + "ext.cnf") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
        const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        run("openssl req -x509 " + ec + " -keyout " + d + "ca.key -out " + d + "ca.pem -days 2 -subj /CN=colock-test-ca");
        run("openssl req " + ec + " -keyout " + d + "server.key -out " + d + "server.csr -subj /CN=localhost");
        run("openssl x509 -req -in " + d + "server.csr -CA " + d + "ca.pem -CAkey " + d + "ca.key -CAcreateserial -out " +
            d + "server.pem -days 2 -extfile " + d + "ext.cnf");
        consul_agent::enable_https({d + "ca.pem", d + "server.pem", d + "server.key"});
    }
    ~tls_material()
    {
        std::error_code ignored;
        std::filesystem::remove_all(g_dir, ignored);
    }
} const g_tls_material;

client_options https_options()
{
    client_options o;
    o.host = "127.0.0.1";
    o.port = consul_agent::instance().https_port();
    o.use_tls = true;
    o.tls_ca_file = (g_dir / "ca.pem").string();
    o.request_timeout = 5s;
    o.max_attempts = 1;
    return o;
}

} // namespace

using colock::test::consul_agent_fixture;
BOOST_TEST_GLOBAL_FIXTURE(consul_agent_fixture);

BOOST_AUTO_TEST_SUITE(test_tls)

BOOST_AUTO_TEST_CASE(https_with_the_ca_file_verifies_the_agent_and_works)
{
    BOOST_TEST_REQUIRE(consul_agent::instance().https_port() != 0);
    const auto prefix = consul_agent::instance().unique_prefix("tls");
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        client c(ioc.get_executor(), https_options());
        BOOST_TEST(co_await c.kv_put(prefix + "k", "over tls"));
        auto r = co_await c.kv_get(prefix + "k");
        BOOST_TEST(r.entry->value == "over tls");
        auto leader = co_await c.status_leader();
        BOOST_TEST(!leader.empty());
    });
}

BOOST_AUTO_TEST_CASE(https_by_host_name_sends_sni_and_verifies_the_name)
{
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        auto o = https_options();
        o.host = "localhost";
        client c(ioc.get_executor(), o);
        auto leader = co_await c.status_leader();
        BOOST_TEST(!leader.empty());
    });
}

BOOST_AUTO_TEST_CASE(a_certificate_for_another_name_is_refused)
{
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        auto o = https_options();
        o.tls_server_name = "consul.example.org";
        client c(ioc.get_executor(), o);
        auto [ec, leader] = co_await c.status_leader({}, tuple_awaitable);
        BOOST_TEST(ec.failed());
        BOOST_TEST(leader.empty());
    });
}

BOOST_AUTO_TEST_CASE(an_unknown_ca_is_refused_unless_verification_is_off)
{
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        auto o = https_options();
        o.tls_ca_file.clear(); // the system's roots do not know the test CA
        {
            client c(ioc.get_executor(), o);
            auto [ec, leader] = co_await c.status_leader({}, tuple_awaitable);
            BOOST_TEST(ec.failed());
        }
        o.tls_verify = false;
        client insecure(ioc.get_executor(), o);
        auto leader = co_await insecure.status_leader();
        BOOST_TEST(!leader.empty());
    });
}

BOOST_AUTO_TEST_CASE(a_missing_ca_file_is_a_configuration_error)
{
    run_async([&](asio::io_context& ioc) -> asio::awaitable<void> {
        auto o = https_options();
        o.tls_ca_file = "/nonexistent/ca.pem";
        client c(ioc.get_executor(), o);
        auto [ec, leader] = co_await c.status_leader({}, tuple_awaitable);
        BOOST_TEST(ec == errc::invalid_config);
    });
}

BOOST_AUTO_TEST_SUITE_END()
