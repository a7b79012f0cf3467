#include "lock_command_options.hpp"

#include "detail/go_duration.hpp"

#include <cstdlib>
#include <limits>

namespace colock::tool {
namespace {

enum class flag_kind { boolean, integer, duration, text };

struct flag_spec {
    std::string_view name;
    flag_kind kind;
    std::string_view variable; // for connection flags: the environment variable it overrides
};

// Every flag consul lock v1.14.11 accepts: its own, then the HTTP client and server flags it merges in
// (not -namespace / -partition: consul lock does not take them; their variables still apply).
constexpr flag_spec flags[] = {
    {"child-exit-code", flag_kind::boolean, {}},
    {"n", flag_kind::integer, {}},
    {"monitor-retry", flag_kind::integer, {}},
    {"name", flag_kind::text, {}},
    {"pass-stdin", flag_kind::boolean, {}},
    {"shell", flag_kind::boolean, {}},
    {"timeout", flag_kind::duration, {}},
    {"try", flag_kind::duration, {}},
    {"verbose", flag_kind::boolean, {}},
    {"stale", flag_kind::boolean, {}},
    {"http-addr", flag_kind::text, "CONSUL_HTTP_ADDR"},
    {"token", flag_kind::text, "CONSUL_HTTP_TOKEN"},
    {"token-file", flag_kind::text, "CONSUL_HTTP_TOKEN_FILE"},
    {"ca-file", flag_kind::text, "CONSUL_CACERT"},
    {"ca-path", flag_kind::text, "CONSUL_CAPATH"},
    {"client-cert", flag_kind::text, "CONSUL_CLIENT_CERT"},
    {"client-key", flag_kind::text, "CONSUL_CLIENT_KEY"},
    {"tls-server-name", flag_kind::text, "CONSUL_TLS_SERVER_NAME"},
    {"datacenter", flag_kind::text, "CONSUL_DATACENTER"},
};

const flag_spec* find_flag(std::string_view name)
{
    for (const auto& f : flags)
        if (f.name == name)
            return &f;
    return nullptr;
}

// Applies one flag's value; false when the value does not parse (Go then says "parse error").
bool set_flag(lock_command_options& o, const flag_spec& f, const std::string& value)
{
    switch (f.kind) {
    case flag_kind::boolean: {
        const auto b = parse_go_bool(value);
        if (!b)
            return false;
        if (f.name == "child-exit-code")
            o.child_exit_code = *b;
        else if (f.name == "pass-stdin")
            o.pass_stdin = *b;
        else if (f.name == "shell")
            o.shell = *b;
        else if (f.name == "verbose")
            o.verbose = *b;
        else
            o.stale = *b;
        return true;
    }
    case flag_kind::integer: {
        const auto n = parse_go_int(value);
        if (!n || *n < std::numeric_limits<int>::min() || *n > std::numeric_limits<int>::max())
            return false;
        (f.name == "n" ? o.limit : o.monitor_retry) = static_cast<int>(*n);
        return true;
    }
    case flag_kind::duration: {
        const auto d = parse_go_duration_flag(value);
        if (!d)
            return false;
        o.timeout = *d; // -try is the old spelling of -timeout
        return true;
    }
    case flag_kind::text:
        if (f.variable.empty())
            o.name = value;
        else
            o.connection[std::string(f.variable)] = value;
        return true;
    }
    return false;
}

lock_command_parse usage_error(std::string message, bool print_usage)
{
    lock_command_parse r;
    r.what = lock_command_parse::outcome::usage_error;
    r.error = std::move(message);
    r.print_usage = print_usage;
    return r;
}

} // namespace

std::optional<std::chrono::nanoseconds> parse_go_duration_flag(std::string_view text)
{
    bool negative = false;
    if (!text.empty() && (text[0] == '-' || text[0] == '+')) {
        negative = text[0] == '-';
        text.remove_prefix(1);
    }
    const auto d = colock::detail::parse_go_duration(text);
    if (!d)
        return std::nullopt;
    return negative ? -*d : *d;
}

std::optional<long long> parse_go_int(std::string_view s)
{
    bool negative = false;
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
        negative = s[0] == '-';
        s.remove_prefix(1);
    }
    if (s.empty())
        return std::nullopt;
    unsigned base = 10;
    bool prefixed = false;
    if (s.size() >= 2 && s[0] == '0') {
        const char p = static_cast<char>(s[1] | 0x20);
        if (p == 'x' || p == 'o' || p == 'b') {
            base = p == 'x' ? 16 : p == 'o' ? 8 : 2;
            s.remove_prefix(2);
            prefixed = true;
        } else {
            base = 8;
            s.remove_prefix(1);
        }
    }
    // Underscores only between digits, or right after a base prefix (Go's underscoreOK).
    unsigned long long value = 0;
    bool last_digit = prefixed || base == 8; // "0_7" and "0x_1f" are valid
    bool any = base == 8 && !prefixed;        // the leading "0" itself is a digit
    for (char c : s) {
        if (c == '_') {
            if (!last_digit)
                return std::nullopt;
            last_digit = false;
            continue;
        }
        unsigned d;
        if (c >= '0' && c <= '9')
            d = static_cast<unsigned>(c - '0');
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = static_cast<unsigned>((c | 0x20) - 'a' + 10);
        else
            return std::nullopt;
        if (d >= base)
            return std::nullopt;
        if (value > (std::numeric_limits<unsigned long long>::max() - d) / base)
            return std::nullopt;
        value = value * base + d;
        last_digit = true;
        any = true;
    }
    if (!any || !last_digit)
        return std::nullopt;
    const auto max = static_cast<unsigned long long>(std::numeric_limits<long long>::max());
    if (negative) {
        if (value > max + 1)
            return std::nullopt;
        return value == max + 1 ? std::numeric_limits<long long>::min() : -static_cast<long long>(value);
    }
    if (value > max)
        return std::nullopt;
    return static_cast<long long>(value);
}

std::optional<bool> parse_go_bool(std::string_view v)
{
    if (v == "1" || v == "t" || v == "T" || v == "true" || v == "TRUE" || v == "True")
        return true;
    if (v == "0" || v == "f" || v == "F" || v == "false" || v == "FALSE" || v == "False")
        return false;
    return std::nullopt;
}

std::string go_path_join(std::string_view a, std::string_view b)
{
    std::string joined;
    for (auto part : {a, b}) {
        if (part.empty())
            continue;
        if (!joined.empty())
            joined += '/';
        joined += part;
    }
    if (joined.empty())
        return {};
    // Go's path.Clean: drop empty and "." elements, resolve ".." (not above the root), no trailing '/'.
    const bool rooted = joined[0] == '/';
    std::vector<std::string_view> parts;
    std::string_view rest = joined;
    while (!rest.empty()) {
        const auto slash = rest.find('/');
        const auto elem = rest.substr(0, slash);
        rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
        if (elem.empty() || elem == ".")
            continue;
        if (elem == "..") {
            if (!parts.empty() && parts.back() != "..")
                parts.pop_back();
            else if (!rooted)
                parts.push_back(elem);
            continue;
        }
        parts.push_back(elem);
    }
    std::string out = rooted ? "/" : "";
    for (std::size_t i = 0; i < parts.size(); ++i) {
        if (i)
            out += '/';
        out += parts[i];
    }
    return out.empty() ? "." : out;
}

std::string lock_command_options::lock_key() const
{
    return go_path_join(prefix, ".lock");
}

std::string lock_command_options::session_name() const
{
    if (!name.empty())
        return name;
    std::string joined;
    for (const auto& w : command) {
        if (!joined.empty())
            joined += ' ';
        joined += w;
    }
    return "Consul lock for '" + joined + "' at '" + prefix + "'";
}

std::optional<std::string> lock_command_options::lookup_env(std::string_view variable) const
{
    if (const auto it = connection.find(variable); it != connection.end())
        return it->second;
    if (const char* v = std::getenv(std::string(variable).c_str()))
        return std::string(v);
    return std::nullopt;
}

std::vector<std::string> lock_command_options::child_argv(const std::optional<std::string>& shell_variable) const
{
    if (!shell)
        return command;
    std::string script;
    for (const auto& w : command) {
        if (!script.empty())
            script += ' ';
        script += w;
    }
    const std::string sh = shell_variable && !shell_variable->empty() ? *shell_variable : "/bin/sh";
    return {sh, "-c", script};
}

lock_command_parse parse_lock_command(const std::vector<std::string>& args)
{
    lock_command_parse r;
    auto& o = r.options;
    std::size_t i = 0;
    // Go's flag.FlagSet.Parse, one argument at a time.
    while (i < args.size()) {
        const std::string& s = args[i];
        if (s.size() < 2 || s[0] != '-')
            break; // the first non-flag word
        std::size_t minuses = 1;
        if (s[1] == '-') {
            minuses = 2;
            if (s.size() == 2) {
                ++i; // "--" ends the flags
                break;
            }
        }
        std::string name = s.substr(minuses);
        if (name.empty() || name[0] == '-' || name[0] == '=')
            return usage_error("bad flag syntax: " + s, true);
        ++i;
        std::optional<std::string> value;
        if (const auto eq = name.find('=', 1); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name.resize(eq);
        }
        const flag_spec* f = find_flag(name);
        if (!f) {
            if (name == "h" || name == "help") {
                r.what = lock_command_parse::outcome::help;
                return r;
            }
            return usage_error("flag provided but not defined: -" + name, true);
        }
        if (f->kind == flag_kind::boolean) {
            if (!set_flag(o, *f, value.value_or("true")))
                return usage_error("invalid boolean value \"" + *value + "\" for -" + name + ": parse error", true);
            continue;
        }
        if (!value) {
            if (i == args.size())
                return usage_error("flag needs an argument: -" + name, true);
            value = args[i++];
        }
        if (!set_flag(o, *f, *value))
            return usage_error("invalid value \"" + *value + "\" for flag -" + name + ": parse error", true);
    }

    // consul lock's own checks, in its order and words.
    if (o.limit <= 0)
        return usage_error("Lock holder limit must be positive", false);
    if (args.size() - i < 2)
        return usage_error("Key prefix and child command must be specified", false);
    o.prefix = args[i];
    if (o.prefix.starts_with('/'))
        o.prefix.erase(0, 1);
    o.command.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
    if (o.timeout.count() < 0)
        return usage_error("Timeout must be positive", false);
    if (o.monitor_retry < 0)
        return usage_error("Number for 'monitor-retry' must be >= 0", false);
    return r;
}

std::string lock_command_help()
{
    return R"(Usage: colock lock [options] <prefix> <command...>

  Acquires the lock <prefix>/.lock in Consul (or, with -n N > 1, one of N slots
  of the semaphore at <prefix>), runs <command> while holding it, then releases
  it. Compatible with `consul lock` (Consul v1.14.11): same options, same keys,
  flags and session name, same exit codes; the two exclude each other.

  The command gets CONSUL_LOCK_HELD=true and COLOCK_FENCING_TOKEN=<n> in its
  environment: a number that rises strictly with every acquisition of the lock
  (the ModifyIndex of the acquiring write). Pass it to whatever the command
  changes, and let that refuse smaller tokens: a lease can be lost while the
  command still runs.

  If the lock is lost (its key deleted or taken over, its session destroyed,
  or Consul unreachable for longer than the session TTL), the command gets
  SIGTERM, and SIGKILL 5 s later if it is still running. SIGINT, SIGTERM or
  SIGHUP sent to colock are passed on to the command, which then gets the same
  SIGTERM / 5 s / SIGKILL treatment; colock then releases the lock, destroys its
  session and exits. Signals go to the command's process only (as consul lock
  does), not to processes it started: use `exec` in shell commands.

Options:
  -n=<int>              Most holders at once. 1 (default): a lock; more: a
                        semaphore (every user of the prefix must use the same N).
  -timeout=<duration>   Give up acquiring after this long (Go syntax: 500ms, 10s,
                        1m30s). 0 (default): wait until acquired.
  -try=<duration>       Deprecated spelling of -timeout.
  -monitor-retry=<int>  Accepted for compatibility (default 3, must be >= 0).
                        consul lock tolerates that many HTTP 500s, 1 s apart,
                        while watching the lock; colock always rides out
                        transient errors for as long as the session TTL (15 s)
                        vouches for the lock, and reports the loss when that
                        window ends without news from Consul.
  -name=<string>        Session name (default: "Consul lock for '<command>' at
                        '<prefix>'", as consul lock).
  -pass-stdin           Give the command colock's stdin (default: /dev/null).
  -shell=<bool>         true (default): join the words with spaces and run them
                        with "$SHELL -c" (/bin/sh when SHELL is unset);
                        false: run the words directly (found on PATH).
  -child-exit-code      Exit 2 when the command fails (non-zero exit, killed by
                        a signal, or could not be started); default: exit 0.
  -verbose              Say what happens, step by step (on stdout).
  -h, -help, --help     This help.

Connection (the same flags and variables as the consul CLI):
  -http-addr=<addr>     CONSUL_HTTP_ADDR    host:port, http://..., https://...
                                            (default 127.0.0.1:8500)
  -token=<token>        CONSUL_HTTP_TOKEN   ACL token
  -token-file=<path>    CONSUL_HTTP_TOKEN_FILE  file with the ACL token (wins)
  -ca-file=<path>       CONSUL_CACERT       CA certificates for HTTPS
  -ca-path=<dir>        CONSUL_CAPATH       directory of CA certificates
  -client-cert=<path>   CONSUL_CLIENT_CERT  client certificate
  -client-key=<path>    CONSUL_CLIENT_KEY   client key
  -tls-server-name=<n>  CONSUL_TLS_SERVER_NAME  name to verify (and SNI)
  -datacenter=<dc>      CONSUL_DATACENTER   datacenter (default: the agent's)
  -stale                Accepted, as by consul lock; no effect on a lock.
                        CONSUL_HTTP_SSL=true (https), CONSUL_HTTP_SSL_VERIFY=false,
                        CONSUL_NAMESPACE, CONSUL_PARTITION (Enterprise) apply too.
  Flags use Go's syntax: -flag, --flag, -flag=value, -flag value (not for
  true/false flags: write -shell=false); `--` ends the options.

Exit codes (those of consul lock):
  0  the command ran and the lock was released (whatever the command's exit
     status without -child-exit-code; also after a lost lock or a signal)
  1  bad usage or option, the agent cannot be reached, acquisition failed,
     -timeout expired or a signal arrived before the lock was acquired, the
     release or the cleanup of the lock key failed
  2  with -child-exit-code: the command failed
)";
}

std::string colock_help()
{
    return R"(Usage: colock <command> [options] [args]

  colock runs programs under Consul locks, compatible with the consul CLI.

Commands:
  lock    Run a command while holding a lock or a semaphore slot
          (colock lock --help for details)

Exit codes: 0 success, 1 usage error or failure; `colock lock` adds 2.
)";
}

} // namespace colock::tool
