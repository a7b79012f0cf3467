// Tier A: client_options::from_env(lookup) with a fake environment. Errors are system_error(errc::invalid_config)
// naming the variable at fault, and never include a token's value.
#include <colock/consul/config.hpp>
#include <colock/error.hpp>

#include <boost/system/system_error.hpp>
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <unistd.h>

namespace {

using colock::errc;
using colock::consul::client_options;
using namespace std::string_literals;
namespace fs = std::filesystem;

using env_map = std::map<std::string, std::string, std::less<>>;

client_options load(const env_map& env)
{
    return client_options::from_env([&env](std::string_view name) -> std::optional<std::string> {
        const auto it = env.find(name);
        if (it == env.end())
            return std::nullopt;
        return it->second;
    });
}

// The what() of the invalid_config error that loading `env` must throw ("" and a test failure if none).
std::string config_error(const env_map& env)
{
    try {
        (void)load(env);
    } catch (const boost::system::system_error& e) {
        BOOST_TEST((e.code() == errc::invalid_config), "code is " << e.code().message());
        return e.what();
    }
    BOOST_ERROR("no error thrown");
    return {};
}

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

// A file in the temp directory that is removed again at the end of the test.
class temp_file {
public:
    explicit temp_file(std::string_view contents)
        : path_(fs::temp_directory_path() / ("colock-unit-config-" + std::to_string(::getpid()) + "-" +
                                             std::to_string(counter_++)))
    {
        std::ofstream out(path_, std::ios::binary);
        out << contents;
        BOOST_REQUIRE(out.good());
    }
    temp_file(const temp_file&) = delete;
    temp_file& operator=(const temp_file&) = delete;
    ~temp_file()
    {
        std::error_code ec;
        fs::remove(path_, ec);
    }
    std::string path() const { return path_.string(); }

private:
    static inline int counter_ = 0;
    fs::path path_;
};

} // namespace

BOOST_AUTO_TEST_SUITE(test_config)

BOOST_AUTO_TEST_CASE(from_env_keeps_the_defaults_when_nothing_is_set)
{
    const client_options o = load({});
    const client_options d;
    BOOST_TEST(o.host == "127.0.0.1");
    BOOST_TEST(o.port == 8500);
    BOOST_TEST(!o.use_tls);
    BOOST_TEST(o.tls_verify);
    BOOST_TEST(o.token.empty());
    BOOST_TEST(o.datacenter.empty());
    BOOST_TEST(o.ns.empty());
    BOOST_TEST(o.partition.empty());
    BOOST_TEST(o.tls_ca_file.empty());
    BOOST_TEST(o.max_connections == d.max_connections);
    BOOST_TEST(o.request_timeout.count() == d.request_timeout.count());
}

BOOST_AUTO_TEST_CASE(from_env_treats_empty_variables_as_unset)
{
    const client_options o = load({{"CONSUL_HTTP_ADDR", ""}, {"CONSUL_HTTP_SSL", ""}, {"CONSUL_HTTP_TOKEN", ""},
                                   {"CONSUL_HTTP_TOKEN_FILE", ""}, {"CONSUL_DATACENTER", ""}});
    BOOST_TEST(o.host == "127.0.0.1");
    BOOST_TEST(o.port == 8500);
    BOOST_TEST(!o.use_tls);
    BOOST_TEST(o.token.empty());
}

BOOST_AUTO_TEST_CASE(from_env_reads_host_and_port_without_a_scheme)
{
    const client_options o = load({{"CONSUL_HTTP_ADDR", "127.0.0.1:8501"}});
    BOOST_TEST(o.host == "127.0.0.1");
    BOOST_TEST(o.port == 8501);
    BOOST_TEST(!o.use_tls);
}

BOOST_AUTO_TEST_CASE(from_env_reads_an_http_url)
{
    const client_options o = load({{"CONSUL_HTTP_ADDR", "http://localhost:8500"}});
    BOOST_TEST(o.host == "localhost");
    BOOST_TEST(o.port == 8500);
    BOOST_TEST(!o.use_tls);
    BOOST_TEST(load({{"CONSUL_HTTP_ADDR", "http://localhost:8500/"}}).host == "localhost"); // a bare "/" is no path
}

BOOST_AUTO_TEST_CASE(from_env_turns_tls_on_for_an_https_url)
{
    const client_options o = load({{"CONSUL_HTTP_ADDR", "https://consul.example:8501"}});
    BOOST_TEST(o.host == "consul.example");
    BOOST_TEST(o.port == 8501);
    BOOST_TEST(o.use_tls);
    // An explicit https:// wins over CONSUL_HTTP_SSL=false.
    BOOST_TEST(load({{"CONSUL_HTTP_SSL", "false"}, {"CONSUL_HTTP_ADDR", "https://consul.example:8501"}}).use_tls);
}

BOOST_AUTO_TEST_CASE(from_env_reads_a_bracketed_ipv6_address_without_brackets)
{
    const client_options o = load({{"CONSUL_HTTP_ADDR", "[::1]:8500"}});
    BOOST_TEST(o.host == "::1");
    BOOST_TEST(o.port == 8500);
    const client_options u = load({{"CONSUL_HTTP_ADDR", "http://[2001:db8::5]:9500"}});
    BOOST_TEST(u.host == "2001:db8::5");
    BOOST_TEST(u.port == 9500);
}

BOOST_AUTO_TEST_CASE(from_env_uses_the_scheme_default_port_when_none_is_given)
{
    const client_options o = load({{"CONSUL_HTTP_ADDR", "example.com"}});
    BOOST_TEST(o.host == "example.com");
    BOOST_TEST(o.port == 80); // as Go's net/http does for http://example.com
    BOOST_TEST(!o.use_tls);
    BOOST_TEST(load({{"CONSUL_HTTP_ADDR", "https://example.com"}}).port == 443);
    BOOST_TEST(load({{"CONSUL_HTTP_SSL", "true"}, {"CONSUL_HTTP_ADDR", "example.com"}}).port == 443);
}

BOOST_AUTO_TEST_CASE(from_env_trims_whitespace_around_the_address)
{
    const client_options o = load({{"CONSUL_HTTP_ADDR", "  10.0.0.1:8500\n"}});
    BOOST_TEST(o.host == "10.0.0.1");
    BOOST_TEST(o.port == 8500);
}

BOOST_AUTO_TEST_CASE(from_env_accepts_the_extreme_valid_ports)
{
    BOOST_TEST(load({{"CONSUL_HTTP_ADDR", "h:1"}}).port == 1);
    BOOST_TEST(load({{"CONSUL_HTTP_ADDR", "h:65535"}}).port == 65535);
}

BOOST_AUTO_TEST_CASE(from_env_rejects_bad_addresses_naming_consul_http_addr)
{
    for (const char* addr : {"ftp://x", "unix:///tmp/s", "host:0", "host:99999", "host:18446744073709551617",
                             "host:abc", "host:", "http://h:1/path", "http://h:1?x=1", "http://h:1#f",
                             "http://user@h:1", "http://", "   ", "HTTP2://h:1"}) {
        BOOST_TEST_CONTEXT("CONSUL_HTTP_ADDR=" << addr)
        {
            const std::string what = config_error({{"CONSUL_HTTP_ADDR", addr}});
            BOOST_TEST(contains(what, "CONSUL_HTTP_ADDR"), "what() = " << what);
        }
    }
}

BOOST_AUTO_TEST_CASE(from_env_reads_consul_http_ssl_as_go_parse_bool)
{
    for (const char* yes : {"1", "t", "T", "true", "TRUE", "True"}) {
        const client_options o = load({{"CONSUL_HTTP_SSL", yes}, {"CONSUL_HTTP_ADDR", "127.0.0.1:8501"}});
        BOOST_TEST(o.use_tls, "CONSUL_HTTP_SSL=" << yes);
        BOOST_TEST(o.port == 8501);
    }
    for (const char* no : {"0", "f", "F", "false", "FALSE", "False"})
        BOOST_TEST(!load({{"CONSUL_HTTP_SSL", no}}).use_tls, "CONSUL_HTTP_SSL=" << no);
}

BOOST_AUTO_TEST_CASE(from_env_rejects_a_bad_consul_http_ssl_naming_the_variable)
{
    for (const char* bad : {"yes", "on", "2", "tRuE", " true"}) {
        const std::string what = config_error({{"CONSUL_HTTP_SSL", bad}});
        BOOST_TEST(contains(what, "CONSUL_HTTP_SSL"), "what() = " << what);
    }
    const std::string what = config_error({{"CONSUL_HTTP_SSL_VERIFY", "nope"}});
    BOOST_TEST(contains(what, "CONSUL_HTTP_SSL_VERIFY"), "what() = " << what);
}

BOOST_AUTO_TEST_CASE(from_env_reads_the_tls_variables)
{
    const client_options o = load({{"CONSUL_HTTP_SSL_VERIFY", "false"},
                                   {"CONSUL_CACERT", "/etc/consul/ca.pem"},
                                   {"CONSUL_CAPATH", "/etc/consul/ca.d"},
                                   {"CONSUL_CLIENT_CERT", "/etc/consul/cert.pem"},
                                   {"CONSUL_CLIENT_KEY", "/etc/consul/key.pem"},
                                   {"CONSUL_TLS_SERVER_NAME", "server.dc1.consul"}});
    BOOST_TEST(!o.tls_verify);
    BOOST_TEST(o.tls_ca_file == "/etc/consul/ca.pem");
    BOOST_TEST(o.tls_ca_path == "/etc/consul/ca.d");
    BOOST_TEST(o.tls_cert_file == "/etc/consul/cert.pem");
    BOOST_TEST(o.tls_key_file == "/etc/consul/key.pem");
    BOOST_TEST(o.tls_server_name == "server.dc1.consul");
}

BOOST_AUTO_TEST_CASE(from_env_reads_consul_http_token_trimmed)
{
    BOOST_TEST(load({{"CONSUL_HTTP_TOKEN", "b1gs3cr3t-0000"}}).token == "b1gs3cr3t-0000");
    BOOST_TEST(load({{"CONSUL_HTTP_TOKEN", "  b1gs3cr3t-0000\n"}}).token == "b1gs3cr3t-0000");
}

BOOST_AUTO_TEST_CASE(from_env_reads_the_token_file_trimmed)
{
    const temp_file f("  f1l3-t0k3n-4242\r\n\n");
    const client_options o = load({{"CONSUL_HTTP_TOKEN_FILE", f.path()}});
    BOOST_TEST(o.token == "f1l3-t0k3n-4242");
}

BOOST_AUTO_TEST_CASE(from_env_prefers_the_token_file_over_the_token_as_consuls_go_client_does)
{
    const temp_file f("f1l3-t0k3n-4242\n");
    const client_options o = load({{"CONSUL_HTTP_TOKEN", "env-t0k3n"}, {"CONSUL_HTTP_TOKEN_FILE", f.path()}});
    BOOST_TEST(o.token == "f1l3-t0k3n-4242");
}

BOOST_AUTO_TEST_CASE(from_env_rejects_a_missing_token_file_naming_the_variable)
{
    const std::string path = (fs::temp_directory_path() / "colock-unit-config-does-not-exist").string();
    const std::string what = config_error({{"CONSUL_HTTP_TOKEN_FILE", path}});
    BOOST_TEST(contains(what, "CONSUL_HTTP_TOKEN_FILE"), "what() = " << what);
}

BOOST_AUTO_TEST_CASE(from_env_rejects_an_empty_or_unreadable_token_file_naming_the_variable)
{
    const temp_file empty(" \n");
    std::string what = config_error({{"CONSUL_HTTP_TOKEN_FILE", empty.path()}});
    BOOST_TEST(contains(what, "CONSUL_HTTP_TOKEN_FILE"), "what() = " << what);
    what = config_error({{"CONSUL_HTTP_TOKEN_FILE", fs::temp_directory_path().string()}}); // a directory
    BOOST_TEST(contains(what, "CONSUL_HTTP_TOKEN_FILE"), "what() = " << what);
}

BOOST_AUTO_TEST_CASE(errors_never_contain_the_token_value)
{
    const std::string secret = "Sup3rS3cr3tT0k3n";
    // A token with a control character, from the environment and from a file.
    std::string what = config_error({{"CONSUL_HTTP_TOKEN", secret + "\x01" + secret}});
    BOOST_TEST(contains(what, "CONSUL_HTTP_TOKEN"), "what() = " << what);
    BOOST_TEST(!contains(what, secret));
    const temp_file f(secret + "\x7f" + secret + "\n");
    what = config_error({{"CONSUL_HTTP_TOKEN_FILE", f.path()}});
    BOOST_TEST(contains(what, "CONSUL_HTTP_TOKEN_FILE"), "what() = " << what);
    BOOST_TEST(!contains(what, secret));
    // A good token next to another bad variable.
    for (const env_map& env : {env_map{{"CONSUL_HTTP_TOKEN", secret}, {"CONSUL_HTTP_ADDR", "ftp://x"}},
                               env_map{{"CONSUL_HTTP_TOKEN", secret}, {"CONSUL_HTTP_SSL_VERIFY", "maybe"}}}) {
        what = config_error(env);
        BOOST_TEST(!contains(what, secret), "what() = " << what);
    }
}

BOOST_AUTO_TEST_CASE(from_env_reads_datacenter_namespace_and_partition_trimmed)
{
    const client_options o =
        load({{"CONSUL_DATACENTER", "dc1"}, {"CONSUL_NAMESPACE", " team-a "}, {"CONSUL_PARTITION", "part\n"}});
    BOOST_TEST(o.datacenter == "dc1");
    BOOST_TEST(o.ns == "team-a");
    BOOST_TEST(o.partition == "part");
}

BOOST_AUTO_TEST_CASE(from_env_without_lookup_reads_the_process_environment)
{
    // Only checks that the real-environment overload runs; its result depends on the caller's environment, which may
    // hold invalid values, so a thrown invalid_config is acceptable too.
    try {
        (void)client_options::from_env();
    } catch (const boost::system::system_error& e) {
        BOOST_TEST((e.code() == errc::invalid_config));
    }
}

BOOST_AUTO_TEST_SUITE_END()
