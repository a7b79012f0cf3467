#include <colock/consul/config.hpp>
#include <colock/error.hpp>

#include <boost/system/system_error.hpp>
#include <boost/url/parse.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace colock::consul {
namespace {

[[noreturn]] void fail(std::string_view variable, std::string_view what)
{
    throw boost::system::system_error(make_error_code(errc::invalid_config),
                                      std::string(variable) + ": " + std::string(what));
}

// Go's strconv.ParseBool, which the consul CLI uses for its boolean variables.
bool parse_bool(std::string_view variable, const std::string& v)
{
    if (v == "1" || v == "t" || v == "T" || v == "true" || v == "TRUE" || v == "True")
        return true;
    if (v == "0" || v == "f" || v == "F" || v == "false" || v == "FALSE" || v == "False")
        return false;
    fail(variable, "expected true or false, got '" + v + "'");
}

std::string trim(std::string s)
{
    const auto first = s.find_first_not_of(" \t\r\n");
    if (first == std::string::npos)
        return {};
    const auto last = s.find_last_not_of(" \t\r\n");
    return s.substr(first, last - first + 1);
}

void apply_address(client_options& o, const std::string& raw)
{
    constexpr std::string_view var = "CONSUL_HTTP_ADDR";
    std::string addr = trim(raw);
    if (addr.empty())
        fail(var, "empty address");
    bool tls = o.use_tls;
    if (addr.starts_with("unix://"))
        fail(var, "unix sockets are not supported; use host:port");
    if (addr.find("://") == std::string::npos) {
        addr = "http://" + addr;
    } else if (addr.starts_with("https://")) {
        tls = true;
    } else if (!addr.starts_with("http://")) {
        fail(var, "scheme must be http or https in '" + raw + "'");
    }
    const std::string expected = "expected host:port, http://host:port or https://host:port, got '" + raw + "'";
    auto url = boost::urls::parse_uri(addr);
    if (!url)
        fail(var, expected);
    if ((!url->encoded_path().empty() && url->encoded_path() != "/") || url->has_query() || url->has_fragment() ||
        url->has_userinfo())
        fail(var, expected);
    std::string host = std::string(url->encoded_host());
    if (url->host_type() == boost::urls::host_type::ipv6)
        host = std::string(url->encoded_host_address());
    if (host.empty())
        fail(var, "missing host in '" + raw + "'");
    o.host = host;
    if (url->has_port()) {
        const auto p = url->port();
        char* end = nullptr;
        const std::string ps(p);
        const unsigned long n = std::strtoul(ps.c_str(), &end, 10);
        if (ps.empty() || *end != '\0' || n == 0 || n > 65535)
            fail(var, "invalid port in '" + raw + "'");
        o.port = static_cast<std::uint16_t>(n);
    } else {
        o.port = tls ? 443 : 80;
    }
    o.use_tls = tls;
}

} // namespace

client_options client_options::from_env(const env_lookup& getenv)
{
    client_options o;
    auto get = [&](std::string_view name) -> std::optional<std::string> {
        auto v = getenv(name);
        if (v && v->empty())
            return std::nullopt; // an empty variable counts as unset, as in the consul CLI
        return v;
    };
    // CONSUL_HTTP_SSL first: an explicit https:// address turns TLS on regardless.
    if (auto v = get("CONSUL_HTTP_SSL"))
        o.use_tls = parse_bool("CONSUL_HTTP_SSL", *v);
    if (auto v = get("CONSUL_HTTP_ADDR"))
        apply_address(o, *v);
    if (auto v = get("CONSUL_HTTP_SSL_VERIFY"))
        o.tls_verify = parse_bool("CONSUL_HTTP_SSL_VERIFY", *v);
    std::string_view token_source = "CONSUL_HTTP_TOKEN";
    if (auto v = get("CONSUL_HTTP_TOKEN"))
        o.token = trim(*v);
    // As in Consul's Go client, a token file wins over CONSUL_HTTP_TOKEN.
    if (auto path = get("CONSUL_HTTP_TOKEN_FILE")) {
        std::ifstream in(*path);
        if (!in)
            fail("CONSUL_HTTP_TOKEN_FILE", "cannot read '" + *path + "'");
        std::stringstream ss;
        ss << in.rdbuf();
        o.token = trim(ss.str());
        token_source = "CONSUL_HTTP_TOKEN_FILE";
        if (o.token.empty())
            fail("CONSUL_HTTP_TOKEN_FILE", "'" + *path + "' is empty");
    }
    if (auto v = get("CONSUL_CACERT"))
        o.tls_ca_file = *v;
    if (auto v = get("CONSUL_CAPATH"))
        o.tls_ca_path = *v;
    if (auto v = get("CONSUL_CLIENT_CERT"))
        o.tls_cert_file = *v;
    if (auto v = get("CONSUL_CLIENT_KEY"))
        o.tls_key_file = *v;
    if (auto v = get("CONSUL_TLS_SERVER_NAME"))
        o.tls_server_name = *v;
    if (auto v = get("CONSUL_DATACENTER"))
        o.datacenter = trim(*v);
    if (auto v = get("CONSUL_NAMESPACE"))
        o.ns = trim(*v);
    if (auto v = get("CONSUL_PARTITION"))
        o.partition = trim(*v);
    for (char c : o.token)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            fail(token_source, "the token contains control characters");
    return o;
}

client_options client_options::from_env()
{
    return from_env([](std::string_view name) -> std::optional<std::string> {
        const char* v = std::getenv(std::string(name).c_str());
        if (!v)
            return std::nullopt;
        return std::string(v);
    });
}

} // namespace colock::consul
