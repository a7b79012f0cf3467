#ifndef COLOCK_TOOLS_COLOCK_LOCK_COMMAND_OPTIONS_HPP
#define COLOCK_TOOLS_COLOCK_LOCK_COMMAND_OPTIONS_HPP

// The command line of `colock lock`: the options of `consul lock` (Consul v1.14.11,
// command/lock/lock.go plus the HTTP flags of command/flags/http.go) in Go's flag syntax, parsed into
// a plain value. No I/O here: the tool and its unit tests share this code.

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace colock::tool {

/// Exit codes of `colock lock`, those of `consul lock`.
enum exit_code : int {
    exit_ok = 0,           ///< the child ran (or its failure is not propagated), or help was asked for
    exit_failure = 1,      ///< bad usage, agent unreachable, acquisition failed or timed out, release failed
    exit_child_failed = 2, ///< with -child-exit-code: the child exited non-zero, died of a signal, or could not start
};

/// Go's time.ParseDuration, sign included ("-1s", "1h30m", "0"); empty on malformed input.
std::optional<std::chrono::nanoseconds> parse_go_duration_flag(std::string_view text);
/// Go's strconv.ParseInt(text, 0, 64): decimal, 0x/0o/0b prefixes, a leading 0 for octal, '_' between digits.
std::optional<long long> parse_go_int(std::string_view text);
/// Go's strconv.ParseBool.
std::optional<bool> parse_go_bool(std::string_view text);
/// Go's path.Join(a, b): joins with '/' and cleans the result ("a//b/./c/.." -> "a/b").
std::string go_path_join(std::string_view a, std::string_view b);

/// The settings of one `colock lock` run.
struct lock_command_options {
    lock_command_options() {}

    int limit = 1;                              ///< -n: 1 = a lock, more = a semaphore with that many slots
    std::chrono::nanoseconds timeout{0};        ///< -timeout (-try): 0 = wait for ever
    int monitor_retry = 3;                      ///< -monitor-retry (validated; see the help text)
    std::string name;                           ///< -name: the session name ("" = derived, session_name())
    bool pass_stdin = false;                    ///< -pass-stdin
    bool shell = true;                          ///< -shell: run the joined command with $SHELL -c (else /bin/sh)
    bool child_exit_code = false;               ///< -child-exit-code
    bool verbose = false;                       ///< -verbose
    bool stale = false;                         ///< -stale (accepted as consul does; it changes nothing here)

    /// Connection flags given on the command line, by the environment variable they override
    /// (-http-addr = CONSUL_HTTP_ADDR, -token = CONSUL_HTTP_TOKEN, ...): the client reads the
    /// environment through this overlay, so flags and variables follow the same rules.
    std::map<std::string, std::string, std::less<>> connection;

    std::string prefix;                         ///< the key prefix, one leading '/' removed
    std::vector<std::string> command;           ///< the child command, at least one word

    /// The lock key: `<prefix>/.lock` (Go's path.Join), the key a semaphore on the prefix also uses.
    std::string lock_key() const;
    /// -name, or "Consul lock for '<command>' at '<prefix>'" as consul lock names its sessions.
    std::string session_name() const;
    /// The environment variable lookup the client is configured from: flags first, then `getenv`.
    std::optional<std::string> lookup_env(std::string_view variable) const;
    /// argv of the child: {$SHELL or /bin/sh, "-c", words joined with spaces} with -shell, else the words.
    std::vector<std::string> child_argv(const std::optional<std::string>& shell_variable) const;
};

/// What a command line asks for.
struct lock_command_parse {
    enum class outcome { run, help, usage_error };
    outcome what = outcome::run;
    lock_command_options options;  ///< when `run`
    std::string error;             ///< when `usage_error`: the message, as consul lock words it
    bool print_usage = false;      ///< when `usage_error`: a flag error, followed by the option list (as Go's flag does)
};

/// Parses the arguments after `lock` (Go flag syntax: -flag, --flag, -flag=value, -flag value for
/// non-boolean flags, `--` ends the options, the first non-option word starts <prefix>). -h, -help
/// and --help among the options ask for help. Then the checks of consul lock, in its order.
lock_command_parse parse_lock_command(const std::vector<std::string>& args);

/// The help text of `colock lock` (usage, every option, environment, exit codes).
std::string lock_command_help();
/// The help text of `colock` itself.
std::string colock_help();

} // namespace colock::tool

#endif
