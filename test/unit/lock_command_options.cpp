// Tier A: the command line of `colock lock` (tools/colock/lock_command_options.hpp). Expectations follow
// consul lock v1.14.11 (command/lock/lock.go) and Go's flag, strconv and path packages.
#include "lock_command_options.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace {

using namespace colock::tool;
using namespace std::chrono_literals;
using outcome = lock_command_parse::outcome;

lock_command_parse parse(std::vector<std::string> args)
{
    return parse_lock_command(args);
}

lock_command_options ok(std::vector<std::string> args)
{
    auto r = parse_lock_command(args);
    BOOST_TEST_REQUIRE((r.what == outcome::run), "not a run: " << r.error);
    return r.options;
}

std::string error_of(std::vector<std::string> args)
{
    auto r = parse_lock_command(args);
    BOOST_TEST_REQUIRE((r.what == outcome::usage_error));
    return r.error;
}

} // namespace

BOOST_AUTO_TEST_SUITE(test_lock_command_options)

BOOST_AUTO_TEST_CASE(defaults_are_those_of_consul_lock)
{
    const auto o = ok({"svc/leader", "run.sh"});
    BOOST_TEST(o.limit == 1);
    BOOST_TEST(o.timeout.count() == 0);
    BOOST_TEST(o.monitor_retry == 3);
    BOOST_TEST(o.shell);
    BOOST_TEST(!o.pass_stdin);
    BOOST_TEST(!o.child_exit_code);
    BOOST_TEST(!o.verbose);
    BOOST_TEST(o.prefix == "svc/leader");
    BOOST_TEST((o.command == std::vector<std::string>{"run.sh"}));
    BOOST_TEST(o.lock_key() == "svc/leader/.lock");
}

BOOST_AUTO_TEST_CASE(every_go_flag_spelling_is_accepted)
{
    const auto o = ok({"-n", "3", "--timeout=1m30s", "-monitor-retry=0", "--name", "job", "-pass-stdin",
                       "-shell=false", "--child-exit-code", "-verbose=true", "-stale", "p", "cmd", "-x", "--y"});
    BOOST_TEST(o.limit == 3);
    BOOST_TEST((o.timeout == 90s));
    BOOST_TEST(o.monitor_retry == 0);
    BOOST_TEST(o.name == "job");
    BOOST_TEST(o.pass_stdin);
    BOOST_TEST(!o.shell);
    BOOST_TEST(o.child_exit_code);
    BOOST_TEST(o.verbose);
    BOOST_TEST(o.stale);
    BOOST_TEST((o.command == std::vector<std::string>{"cmd", "-x", "--y"})); // after <prefix>: the child's
}

BOOST_AUTO_TEST_CASE(try_is_the_old_spelling_of_timeout_and_the_last_one_wins)
{
    BOOST_TEST((ok({"-try=2s", "p", "c"}).timeout == 2s));
    BOOST_TEST((ok({"-timeout=1s", "-try", "250ms", "p", "c"}).timeout == 250ms));
    BOOST_TEST(ok({"-n=2", "-n=5", "p", "c"}).limit == 5);
}

BOOST_AUTO_TEST_CASE(a_boolean_flag_never_takes_the_next_word)
{
    // Go: "-shell false" is -shell (true) followed by the prefix "false".
    const auto o = ok({"-shell", "false", "c"});
    BOOST_TEST(o.shell);
    BOOST_TEST(o.prefix == "false");
}

BOOST_AUTO_TEST_CASE(double_dash_ends_the_options)
{
    const auto o = ok({"-verbose", "--", "-p", "c"});
    BOOST_TEST(o.prefix == "-p");
    BOOST_TEST(o.verbose);
}

BOOST_AUTO_TEST_CASE(help_among_the_options_is_help_but_not_among_the_childs_words)
{
    BOOST_TEST((parse({"-h"}).what == outcome::help));
    BOOST_TEST((parse({"-n=2", "--help"}).what == outcome::help));
    BOOST_TEST((parse({"-help", "p", "c"}).what == outcome::help));
    const auto o = ok({"p", "ls", "-h"});
    BOOST_TEST((o.command == std::vector<std::string>{"ls", "-h"}));
}

BOOST_AUTO_TEST_CASE(flag_errors_use_gos_words_and_ask_for_the_usage)
{
    auto r = parse({"-bogus", "p", "c"});
    BOOST_TEST((r.what == outcome::usage_error));
    BOOST_TEST(r.print_usage);
    BOOST_TEST(r.error == "flag provided but not defined: -bogus");
    BOOST_TEST(error_of({"-timeout=abc", "p", "c"}) == "invalid value \"abc\" for flag -timeout: parse error");
    BOOST_TEST(error_of({"-timeout=5", "p", "c"}) == "invalid value \"5\" for flag -timeout: parse error");
    BOOST_TEST(error_of({"-n=x", "p", "c"}) == "invalid value \"x\" for flag -n: parse error");
    BOOST_TEST(error_of({"-shell=maybe", "p", "c"}) == "invalid boolean value \"maybe\" for -shell: parse error");
    BOOST_TEST(error_of({"-n"}) == "flag needs an argument: -n");
    BOOST_TEST(error_of({"---n=1", "p", "c"}) == "bad flag syntax: ---n=1");
    BOOST_TEST(error_of({"-=1", "p", "c"}) == "bad flag syntax: -=1");
    // consul lock takes neither -namespace nor -partition (their variables still apply).
    BOOST_TEST(error_of({"-namespace=x", "p", "c"}) == "flag provided but not defined: -namespace");
}

BOOST_AUTO_TEST_CASE(consul_lock_checks_come_in_its_order_without_usage)
{
    auto r = parse({"-n=0", "p"});
    BOOST_TEST(r.error == "Lock holder limit must be positive");
    BOOST_TEST(!r.print_usage);
    BOOST_TEST(error_of({"-n=-1", "p", "c"}) == "Lock holder limit must be positive");
    BOOST_TEST(error_of({"p"}) == "Key prefix and child command must be specified");
    BOOST_TEST(error_of({}) == "Key prefix and child command must be specified");
    BOOST_TEST(error_of({"-timeout=-1s", "p", "c"}) == "Timeout must be positive");
    BOOST_TEST(error_of({"-monitor-retry=-1", "p", "c"}) == "Number for 'monitor-retry' must be >= 0");
    BOOST_TEST(error_of({"-timeout=-1s", "p"}) == "Key prefix and child command must be specified");
}

BOOST_AUTO_TEST_CASE(connection_flags_override_their_environment_variables)
{
    const auto o = ok({"-http-addr=127.0.0.1:9", "-token", "t0k", "-token-file=/tf", "-ca-file=/ca",
                       "-ca-path=/cad", "-client-cert=/c", "-client-key=/k", "-tls-server-name=s",
                       "-datacenter=dc2", "p", "c"});
    BOOST_TEST(o.lookup_env("CONSUL_HTTP_ADDR").value_or("") == "127.0.0.1:9");
    BOOST_TEST(o.lookup_env("CONSUL_HTTP_TOKEN").value_or("") == "t0k");
    BOOST_TEST(o.lookup_env("CONSUL_HTTP_TOKEN_FILE").value_or("") == "/tf");
    BOOST_TEST(o.lookup_env("CONSUL_CACERT").value_or("") == "/ca");
    BOOST_TEST(o.lookup_env("CONSUL_CAPATH").value_or("") == "/cad");
    BOOST_TEST(o.lookup_env("CONSUL_CLIENT_CERT").value_or("") == "/c");
    BOOST_TEST(o.lookup_env("CONSUL_CLIENT_KEY").value_or("") == "/k");
    BOOST_TEST(o.lookup_env("CONSUL_TLS_SERVER_NAME").value_or("") == "s");
    BOOST_TEST(o.lookup_env("CONSUL_DATACENTER").value_or("") == "dc2");
}

BOOST_AUTO_TEST_CASE(the_session_name_and_key_are_consul_locks)
{
    const auto o = ok({"/jobs//nightly/", "echo", "a b"});
    BOOST_TEST(o.prefix == "jobs//nightly/"); // one leading '/' removed, as consul lock does
    BOOST_TEST(o.lock_key() == "jobs/nightly/.lock");
    BOOST_TEST(o.session_name() == "Consul lock for 'echo a b' at 'jobs//nightly/'");
    BOOST_TEST(ok({"-name=mine", "p", "c"}).session_name() == "mine");
}

BOOST_AUTO_TEST_CASE(the_child_runs_through_the_shell_unless_told_otherwise)
{
    const auto o = ok({"p", "echo", "$HOME", "&&", "true"});
    BOOST_TEST((o.child_argv(std::nullopt) == std::vector<std::string>{"/bin/sh", "-c", "echo $HOME && true"}));
    BOOST_TEST((o.child_argv(std::string("/bin/bash")) ==
                std::vector<std::string>{"/bin/bash", "-c", "echo $HOME && true"}));
    BOOST_TEST((o.child_argv(std::string("")) == std::vector<std::string>{"/bin/sh", "-c", "echo $HOME && true"}));
    const auto d = ok({"-shell=false", "p", "echo", "a b"});
    BOOST_TEST((d.child_argv(std::string("/bin/bash")) == std::vector<std::string>{"echo", "a b"}));
}

BOOST_AUTO_TEST_CASE(go_integers_durations_and_booleans)
{
    BOOST_TEST(parse_go_int("42").value_or(-1) == 42);
    BOOST_TEST(parse_go_int("-7").value_or(0) == -7);
    BOOST_TEST(parse_go_int("0x1F").value_or(-1) == 31);
    BOOST_TEST(parse_go_int("0o17").value_or(-1) == 15);
    BOOST_TEST(parse_go_int("017").value_or(-1) == 15);
    BOOST_TEST(parse_go_int("0b101").value_or(-1) == 5);
    BOOST_TEST(parse_go_int("1_000").value_or(-1) == 1000);
    BOOST_TEST(parse_go_int("0").value_or(-1) == 0);
    for (const char* bad : {"", "x", "1_", "_1", "1__0", "08", "0x", "9223372036854775808", "1.5", " 1"})
        BOOST_TEST(!parse_go_int(bad), bad);
    BOOST_TEST(parse_go_int("-9223372036854775808").has_value());

    BOOST_TEST((parse_go_duration_flag("1h2m3.5s").value_or(0ns) == 1h + 2min + 3500ms));
    BOOST_TEST((parse_go_duration_flag("-1s").value_or(0ns) == -1s));
    BOOST_TEST((parse_go_duration_flag("+250ms").value_or(0ns) == 250ms));
    BOOST_TEST((parse_go_duration_flag("0").value_or(1ns) == 0ns));
    for (const char* bad : {"", "5", "1x", "s", "-", "1s-"})
        BOOST_TEST(!parse_go_duration_flag(bad), bad);

    for (const char* t : {"1", "t", "T", "true", "TRUE", "True"})
        BOOST_TEST(parse_go_bool(t).value_or(false), t);
    for (const char* f : {"0", "f", "F", "false", "FALSE", "False"})
        BOOST_TEST(!parse_go_bool(f).value_or(true), f);
    BOOST_TEST(!parse_go_bool("yes"));
}

BOOST_AUTO_TEST_CASE(path_join_cleans_as_gos_path_package)
{
    BOOST_TEST(go_path_join("a", ".lock") == "a/.lock");
    BOOST_TEST(go_path_join("a/", ".lock") == "a/.lock");
    BOOST_TEST(go_path_join("a//b/./c/..", ".lock") == "a/b/.lock");
    BOOST_TEST(go_path_join("", ".lock") == ".lock");
    BOOST_TEST(go_path_join("/a", ".lock") == "/a/.lock");
    BOOST_TEST(go_path_join("../x", ".lock") == "../x/.lock");
    BOOST_TEST(go_path_join("/..", "b") == "/b");
}

BOOST_AUTO_TEST_CASE(help_texts_name_every_option_and_exit_code)
{
    const std::string help = lock_command_help();
    for (const char* word : {"-n=", "-timeout", "-try", "-monitor-retry", "-name", "-pass-stdin", "-shell",
                             "-child-exit-code", "-verbose", "-http-addr", "-token", "-token-file", "-ca-file",
                             "-ca-path", "-client-cert", "-client-key", "-tls-server-name", "-datacenter", "-stale",
                             "CONSUL_LOCK_HELD", "COLOCK_FENCING_TOKEN", "Exit codes", "SIGKILL"})
        BOOST_TEST(help.find(word) != std::string::npos, word);
    BOOST_TEST(colock_help().find("lock") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
