// Tier B: the `colock lock` binary (tools/colock) against a real agent, side by side with Consul's own
// `consul lock` (the harness's binary, or $COLOCK_CONSUL): the child's environment, exit codes, loss
// (SIGTERM, then SIGKILL after the grace period), signals to the tool, and mutual exclusion between the two
// tools on one prefix, with a positive control that proves the exclusion checker can fail.
//
// Processes are started with posix_spawn and waited for by polling with deadlines; nothing sleeps a fixed
// time to wait for a server.

#include "consul_agent.hpp"
#include "kv_probe.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

using colock::test::consul_agent_fixture;
BOOST_TEST_GLOBAL_FIXTURE(consul_agent_fixture);

namespace {

using colock::test::consul_agent;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr std::uint64_t go_lock_flags = 0x2ddccbc058a50c18ULL;

consul_agent& agent()
{
    return consul_agent::instance();
}

std::string colock_binary()
{
    return COLOCK_TOOL_BINARY;
}

// consul lock: the harness's binary, else $COLOCK_CONSUL (an external agent).
std::string consul_binary()
{
    if (!agent().binary_path().empty())
        return agent().binary_path();
    const char* c = std::getenv("COLOCK_CONSUL");
    BOOST_TEST_REQUIRE((c && *c), "no consul binary: the agent is external and COLOCK_CONSUL is not set");
    return c;
}

// A scratch directory for the children's files, removed at the end.
struct scratch_dir {
    fs::path path;
    scratch_dir()
    {
        path = fs::temp_directory_path() / ("colock-tool-test-" + std::to_string(::getpid()) + "-" +
                                            std::to_string(clock_type::now().time_since_epoch().count()));
        fs::create_directories(path);
    }
    ~scratch_dir()
    {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string read_file(const std::string& path)
{
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// One process started by the test, its stdout+stderr in a file.
struct process {
    pid_t pid = 0;
    std::string output_path;
    std::optional<int> status; // raw wait status once reaped

    std::string output() const { return read_file(output_path); }

    // Reaps the process if it has exited; true when it has.
    bool poll()
    {
        if (status)
            return true;
        int st = 0;
        if (::waitpid(pid, &st, WNOHANG) == pid)
            status = st;
        return status.has_value();
    }

    // Waits until it exits (polling), at most `limit`; true when it did.
    bool wait_for(std::chrono::milliseconds limit)
    {
        const auto until = clock_type::now() + limit;
        while (!poll()) {
            if (clock_type::now() >= until)
                return false;
            std::this_thread::sleep_for(5ms);
        }
        return true;
    }

    // The exit code (-1 for a signal); -2 if it did not exit within `limit` (it is then killed).
    int exit_code(std::chrono::milliseconds limit = 30s)
    {
        if (!wait_for(limit)) {
            ::kill(pid, SIGKILL);
            wait_for(5s);
            return -2;
        }
        return WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
    }

    ~process()
    {
        if (pid > 0 && !poll()) {
            ::kill(pid, SIGKILL);
            wait_for(5s);
        }
    }
};

// Starts argv with CONSUL_HTTP_ADDR pointing at the harness's agent (stdin from `input_path` when given).
std::unique_ptr<process> start(const std::vector<std::string>& argv, const std::string& output_path,
                               const std::string& input_path = {})
{
    auto p = std::make_unique<process>();
    p->output_path = output_path;
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e)
        if (std::string_view(*e).substr(0, 17) != "CONSUL_HTTP_ADDR=")
            env.emplace_back(*e);
    env.push_back("CONSUL_HTTP_ADDR=" + agent().http_address());
    std::vector<char*> cargs, cenv;
    auto args = argv;
    for (auto& a : args)
        cargs.push_back(a.data());
    cargs.push_back(nullptr);
    for (auto& e : env)
        cenv.push_back(e.data());
    cenv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, output_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    if (!input_path.empty())
        posix_spawn_file_actions_addopen(&fa, 0, input_path.c_str(), O_RDONLY, 0);
    const int rc = ::posix_spawn(&p->pid, cargs[0], &fa, nullptr, cargs.data(), cenv.data());
    posix_spawn_file_actions_destroy(&fa);
    BOOST_TEST_REQUIRE(rc == 0, "cannot start " << argv[0] << ": " << rc);
    return p;
}

enum class tool { colock, consul };
const char* name_of(tool t)
{
    return t == tool::colock ? "colock" : "consul";
}

std::unique_ptr<process> lock_cmd(tool t, std::vector<std::string> args, const std::string& output_path,
                                  const std::string& input_path = {})
{
    args.insert(args.begin(), {t == tool::colock ? colock_binary() : consul_binary(), "lock"});
    return start(args, output_path, input_path);
}

// Runs `<tool> lock args...` to its end; its exit code.
int run_lock(tool t, std::vector<std::string> args, const scratch_dir& dir, std::string* output = nullptr)
{
    static int n = 0;
    const std::string out = dir.file(std::string(name_of(t)) + "-" + std::to_string(++n) + ".out");
    auto p = lock_cmd(t, std::move(args), out);
    const int code = p->exit_code();
    if (output)
        *output = p->output();
    BOOST_TEST_MESSAGE(name_of(t) << " exited with " << code << "; output:\n" << p->output());
    return code;
}

bool poll_until(const std::function<bool()>& done, std::chrono::milliseconds limit)
{
    const auto until = clock_type::now() + limit;
    while (!done()) {
        if (clock_type::now() >= until)
            return false;
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

bool file_contains(const std::string& path, const std::string& text)
{
    return read_file(path).find(text) != std::string::npos;
}

// Nothing left behind under the prefix, and no session with that name.
void check_clean(const std::string& prefix, const std::string& session_name)
{
    BOOST_TEST(agent().keys_under(prefix).empty(), "keys left under " << prefix);
    BOOST_TEST(agent().sessions_named(session_name).empty(), "sessions left named " << session_name);
}

std::string prefix_of(const std::string& unique) // unique_prefix ends with '/'
{
    return unique.substr(0, unique.size() - 1);
}

// The exclusion checker: in a log of "enter <id>" / "exit <id>" lines, every enter is followed by the exit of
// the same id before the next enter. Returns the number of violations (and counts the critical sections).
struct exclusion_verdict {
    int sections = 0;
    int violations = 0;
};
exclusion_verdict check_exclusion(const std::string& log)
{
    exclusion_verdict v;
    std::istringstream in(log);
    std::string verb, id, inside;
    while (in >> verb >> id) {
        if (verb == "enter") {
            if (!inside.empty())
                ++v.violations; // entered while someone else was inside
            inside = id;
        } else if (verb == "exit") {
            if (inside != id)
                ++v.violations;
            else
                ++v.sections;
            inside.clear();
        }
    }
    if (!inside.empty())
        ++v.violations;
    return v;
}

// Holds <prefix>/.lock by hand, as a Go api.Lock would, until destroyed.
struct raw_holder {
    std::string key, session;
    explicit raw_holder(const std::string& k) : key(k)
    {
        session = colock::test::create_raw_session("colock-tool-test raw holder");
        BOOST_TEST_REQUIRE(colock::test::raw_lock_write(key, "acquire", session, go_lock_flags));
    }
    ~raw_holder()
    {
        colock::test::raw_lock_write(key, "release", session, go_lock_flags);
        colock::test::delete_key(key);
        colock::test::destroy_session(session);
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(test_colock_tool)

BOOST_AUTO_TEST_CASE(the_child_runs_holding_the_lock_with_consul_lock_held_and_a_fencing_token)
{
    scratch_dir dir;
    const std::string prefix = prefix_of(agent().unique_prefix("env"));
    for (tool t : {tool::colock, tool::consul}) {
        const std::string seen = dir.file(std::string("seen-") + name_of(t));
        // The child also reads the lock key, to show it is held while it runs.
        const std::string script = "printf '%s %s\\n' \"$CONSUL_LOCK_HELD\" \"${COLOCK_FENCING_TOKEN:-none}\" > " +
                                   seen + "; curl -sf http://" + agent().http_address() + "/v1/kv/" + prefix +
                                   "/.lock >/dev/null 2>&1 || true";
        BOOST_TEST(run_lock(t, {prefix, script}, dir) == 0, name_of(t));
        const std::string line = read_file(seen);
        BOOST_TEST_MESSAGE(name_of(t) << " child saw: " << line);
        BOOST_TEST(line.starts_with("true "), name_of(t) << ": " << line);
        if (t == tool::colock) {
            const std::string token = line.substr(5, line.find('\n') - 5);
            BOOST_TEST((!token.empty() && std::all_of(token.begin(), token.end(), ::isdigit) && token != "0"),
                       "COLOCK_FENCING_TOKEN = '" << token << "'");
        } else {
            BOOST_TEST(line == "true none\n"); // consul lock passes no token
        }
        // Both clean up: the key is deleted (it was free), the session destroyed.
        BOOST_TEST(!colock::test::read_key(prefix + "/.lock").exists, name_of(t));
    }
    BOOST_TEST(agent().sessions_named("Consul lock for 'printf").empty());
}

BOOST_AUTO_TEST_CASE(exit_codes_are_those_of_consul_lock)
{
    scratch_dir dir;
    const std::string prefix = prefix_of(agent().unique_prefix("codes"));
    struct case_t {
        const char* what;
        std::vector<std::string> args;
        int expected;
    };
    const std::vector<case_t> cases = {
        {"success", {prefix, "true"}, 0},
        {"child fails, not propagated", {prefix, "exit 3"}, 0},
        {"child fails, -child-exit-code", {"-child-exit-code", prefix, "exit 3"}, 2},
        {"child killed by a signal, -child-exit-code", {"-child-exit-code", prefix, "kill -9 $$"}, 2},
        {"child cannot start, -shell=false -child-exit-code",
         {"-shell=false", "-child-exit-code", prefix, "/nonexistent/program"}, 2},
        {"-shell=false runs argv directly", {"-shell=false", "-child-exit-code", prefix, "/bin/sh", "-c", "exit 0"}, 0},
        {"unknown option", {"-bogus", prefix, "true"}, 1},
        {"missing command", {prefix}, 1},
        {"-n 0", {"-n=0", prefix, "true"}, 1},
        {"negative timeout", {"-timeout=-1s", prefix, "true"}, 1},
        {"malformed timeout", {"-timeout=5", prefix, "true"}, 1},
        {"negative monitor-retry", {"-monitor-retry=-1", prefix, "true"}, 1},
        {"help", {"-h"}, 0},
        {"agent unreachable", {"-http-addr=127.0.0.1:1", prefix, "true"}, 1},
    };
    for (const auto& c : cases) {
        const int colock_code = run_lock(tool::colock, c.args, dir);
        const int consul_code = run_lock(tool::consul, c.args, dir);
        BOOST_TEST(colock_code == c.expected, c.what << ": colock");
        BOOST_TEST(consul_code == c.expected, c.what << ": consul lock");
        BOOST_TEST(colock_code == consul_code, c.what);
    }
    BOOST_TEST(agent().keys_under(prefix + "/").empty());
}

BOOST_AUTO_TEST_CASE(timeout_expires_with_exit_1_while_another_session_holds_the_lock)
{
    scratch_dir dir;
    const std::string prefix = prefix_of(agent().unique_prefix("timeout"));
    raw_holder other(prefix + "/.lock");
    const std::string ran = dir.file("ran");
    for (tool t : {tool::colock, tool::consul}) {
        const auto started = clock_type::now();
        std::string out;
        const int code = run_lock(t, {"-timeout=1s", prefix, "touch " + ran}, dir, &out);
        const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - started);
        BOOST_TEST_MESSAGE(name_of(t) << ": -timeout=1s gave up after " << took.count() << " ms");
        BOOST_TEST(code == 1, name_of(t));
        BOOST_TEST(out.find("Shutdown triggered or timeout during lock acquisition") != std::string::npos, out);
        BOOST_TEST(took >= 1s, name_of(t));
        BOOST_TEST(took < 6s, name_of(t));
        BOOST_TEST(!fs::exists(ran), name_of(t) << " ran the child without the lock");
        BOOST_TEST(colock::test::read_key(prefix + "/.lock").session == other.session);
    }
}

// An operator deletes the key or destroys the session: the child gets SIGTERM, and SIGKILL after the 5 s
// grace if it ignores it; the tool then exits 0 (as consul lock does) and leaves nothing behind.
BOOST_AUTO_TEST_CASE(on_loss_the_child_gets_sigterm_then_sigkill_after_the_grace_period)
{
    scratch_dir dir;
    struct run_t {
        tool t;
        bool destroy_session; // else delete the key
        std::string prefix, marks, session_name;
        std::unique_ptr<process> p;
        clock_type::time_point term_seen{}, gone{};
    };
    std::vector<run_t> runs;
    for (tool t : {tool::colock, tool::consul})
        for (bool destroy : {false, true}) {
            run_t r{t, destroy, prefix_of(agent().unique_prefix(std::string("loss-") + name_of(t))), {}, {}, {}, {}, {}};
            r.marks = dir.file("marks-" + std::to_string(runs.size()));
            // Ignores SIGTERM (noting it), so only SIGKILL ends it. `$$` is the shell: the child itself.
            const std::string script = "trap 'echo TERM >> " + r.marks + "' TERM; echo \"pid $$\" >> " + r.marks +
                                       "; while :; do sleep 0.02; done";
            r.session_name = "Consul lock for '" + script + "' at '" + r.prefix + "'";
            r.p = lock_cmd(t, {r.prefix, script}, dir.file("loss-" + std::to_string(runs.size()) + ".out"));
            runs.push_back(std::move(r));
        }
    for (auto& r : runs)
        BOOST_TEST_REQUIRE(poll_until([&] { return file_contains(r.marks, "pid "); }, 15s),
                           name_of(r.t) << " never started its child:\n" << r.p->output());
    for (auto& r : runs) {
        const auto k = colock::test::read_key(r.prefix + "/.lock");
        BOOST_TEST_REQUIRE(!k.session.empty());
        if (r.destroy_session)
            colock::test::destroy_session(k.session);
        else
            colock::test::delete_key(r.prefix + "/.lock");
    }
    const auto operator_act = clock_type::now();
    // Child pids, to see when each is gone (the tools reap their children).
    std::vector<pid_t> pids;
    for (auto& r : runs) {
        const std::string m = read_file(r.marks);
        pids.push_back(static_cast<pid_t>(std::stol(m.substr(m.find("pid ") + 4))));
    }
    poll_until(
        [&] {
            bool all = true;
            for (std::size_t i = 0; i < runs.size(); ++i) {
                auto& r = runs[i];
                if (r.term_seen == clock_type::time_point{} && file_contains(r.marks, "TERM"))
                    r.term_seen = clock_type::now();
                if (r.gone == clock_type::time_point{} && r.p->poll())
                    r.gone = clock_type::now();
                all = all && r.gone != clock_type::time_point{};
            }
            return all;
        },
        40s);
    for (std::size_t i = 0; i < runs.size(); ++i) {
        auto& r = runs[i];
        const std::string what = std::string(name_of(r.t)) + (r.destroy_session ? " (session destroyed)" : " (key deleted)");
        BOOST_TEST_REQUIRE((r.term_seen != clock_type::time_point{}), what << ": the child never got SIGTERM\n"
                                                                          << r.p->output());
        BOOST_TEST_REQUIRE((r.gone != clock_type::time_point{}), what << ": the tool never exited\n" << r.p->output());
        using ms = std::chrono::milliseconds;
        const auto detect = std::chrono::duration_cast<ms>(r.term_seen - operator_act);
        const auto grace = std::chrono::duration_cast<ms>(r.gone - r.term_seen);
        BOOST_TEST_MESSAGE(what << ": SIGTERM " << detect.count() << " ms after the operator's act, tool exited "
                                << grace.count() << " ms after SIGTERM");
        BOOST_TEST(detect < 3s, what);
        BOOST_TEST(grace >= 4800ms, what << ": SIGKILL came too early");
        BOOST_TEST(grace < 8s, what);
        // colock reaps its child before it exits; consul lock does not wait for it (init reaps it later).
        if (r.t == tool::colock)
            BOOST_TEST(::kill(pids[i], 0) != 0, what << ": the child still exists");
        else
            BOOST_TEST(poll_until([&] { return ::kill(pids[i], 0) != 0; }, 5s), what << ": the child still exists");
        BOOST_TEST(r.p->exit_code(1s) == 0, what << " (consul lock exits 0 after a loss)");
        BOOST_TEST(!colock::test::read_key(r.prefix + "/.lock").exists, what << ": key left behind");
        if (r.t == tool::colock) // consul lock leaves its session to expire after a deleted key
            BOOST_TEST(agent().sessions_named(r.session_name).empty(), what << ": session left behind");
    }
}

BOOST_AUTO_TEST_CASE(a_signal_to_colock_reaches_the_child_then_the_lock_is_released_and_the_session_destroyed)
{
    // SIGINT and SIGTERM as consul lock handles them; SIGHUP too (consul lock dies of it and leaves the child).
    const std::pair<int, const char*> signals[] = {{SIGTERM, "TERM"}, {SIGINT, "INT"}, {SIGHUP, "HUP"}};
    for (const auto& [sig, sig_name] : signals) {
        BOOST_TEST_CONTEXT("signal " << sig_name)
        {
            scratch_dir dir;
            const std::string prefix = prefix_of(agent().unique_prefix(std::string("signal_") + sig_name));
            const std::string marks = dir.file("marks");
            // The tool forwards the signal, then stops the child with SIGTERM at once (as consul lock does). Both are
            // trapped, so neither kills the shell before its pending traps run (in signal order: the forwarded
            // one first, which notes its arrival and ends the child).
            std::string script = "trap 'echo TERM >> " + marks + "; exit 0' TERM; ";
            if (sig != SIGTERM)
                script += std::string("trap 'echo ") + sig_name + " >> " + marks + "; exit 0' " + sig_name + "; ";
            script += "echo started >> " + marks + "; while :; do sleep 0.02; done";
            const std::string name = std::string("colock-tool-test signal ") + prefix;
            auto p = lock_cmd(tool::colock, {"-name", name, prefix, script}, dir.file("out"));
            BOOST_TEST_REQUIRE(poll_until([&] { return file_contains(marks, "started"); }, 15s), p->output());
            const auto k = colock::test::read_key(prefix + "/.lock");
            BOOST_TEST_REQUIRE(!k.session.empty());
            BOOST_TEST(agent().sessions_named(name).size() == 1u);
            ::kill(p->pid, sig);
            BOOST_TEST(p->exit_code(10s) == 0, p->output());
            BOOST_TEST(file_contains(marks, sig_name), "the child did not get the signal: " << read_file(marks));
            const auto after = colock::test::read_key(prefix + "/.lock");
            BOOST_TEST(after.session.empty(), "the key still has a Session");
            BOOST_TEST(agent().sessions_named(name).empty(), "the session was not destroyed");
            check_clean(prefix + "/", name);
        }
    }
}

// -pass-stdin hands the tool's stdin to the child; without it the child reads nothing. Side by side with consul lock.
BOOST_AUTO_TEST_CASE(pass_stdin_gives_the_child_our_stdin_as_consul_lock_does)
{
    scratch_dir dir;
    const std::string input = dir.file("input");
    {
        std::ofstream in(input);
        in << "hello from stdin\n";
    }
    for (const tool t : {tool::consul, tool::colock}) {
        for (const bool pass : {true, false}) {
            BOOST_TEST_CONTEXT(name_of(t) << (pass ? " -pass-stdin" : " without -pass-stdin"))
            {
                const std::string prefix = prefix_of(agent().unique_prefix(std::string("stdin_") + name_of(t)));
                const std::string got = dir.file(std::string(name_of(t)) + (pass ? "-pass" : "-nopass"));
                std::vector<std::string> args;
                if (pass)
                    args.push_back("-pass-stdin");
                args.push_back(prefix);
                args.push_back("cat > " + got);
                auto p = lock_cmd(t, args, got + ".out", input);
                BOOST_TEST(p->exit_code(20s) == 0, p->output());
                BOOST_TEST(read_file(got) == (pass ? "hello from stdin\n" : ""), p->output());
            }
        }
    }
}

// Several `consul lock` and `colock lock` runs on one prefix at once: their children's critical sections never
// overlap. The positive control runs the same children without a lock, and the checker must flag them.
BOOST_AUTO_TEST_CASE(consul_lock_and_colock_lock_exclude_each_other)
{
    scratch_dir dir;
    const std::string prefix = prefix_of(agent().unique_prefix("exclusion"));
    const auto child = [](const std::string& log, const std::string& id) {
        return "echo 'enter " + id + "' >> " + log + "; sleep 0.15; echo 'exit " + id + "' >> " + log;
    };

    const std::string control_log = dir.file("control.log");
    {
        std::vector<std::unique_ptr<process>> free_runs;
        for (int i = 0; i < 6; ++i)
            free_runs.push_back(start({"/bin/sh", "-c", child(control_log, "free-" + std::to_string(i))},
                                      dir.file("control-" + std::to_string(i) + ".out")));
        for (auto& p : free_runs)
            BOOST_TEST(p->exit_code(10s) == 0);
    }
    const auto control = check_exclusion(read_file(control_log));
    BOOST_TEST_MESSAGE("positive control (no lock): " << control.violations << " violations");
    BOOST_TEST(control.violations > 0, "the checker did not flag children that ran without a lock:\n"
                                           << read_file(control_log));

    const std::string log = dir.file("locked.log");
    std::vector<std::pair<std::string, std::unique_ptr<process>>> runs;
    const auto started = clock_type::now();
    for (int round = 0; round < 3; ++round)
        for (tool t : {tool::consul, tool::colock}) {
            const std::string id = std::string(name_of(t)) + "-" + std::to_string(round);
            runs.emplace_back(id, lock_cmd(t, {prefix, child(log, id)}, dir.file(id + ".out")));
        }
    for (auto& [id, p] : runs)
        BOOST_TEST(p->exit_code(60s) == 0, id << ":\n" << p->output());
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - started);
    const auto verdict = check_exclusion(read_file(log));
    BOOST_TEST_MESSAGE("6 locked runs (3 consul lock, 3 colock lock) in " << took.count() << " ms: " << verdict.sections
                                                                          << " sections, " << verdict.violations
                                                                          << " violations");
    BOOST_TEST(verdict.violations == 0, read_file(log));
    BOOST_TEST(verdict.sections == 6, read_file(log));
    BOOST_TEST(agent().keys_under(prefix + "/").empty());
}

// -n 2: colock lock and consul lock share the slots of one semaphore; a third contender times out; a
// contender with another limit is refused; the last one out deletes the coordination record.
BOOST_AUTO_TEST_CASE(semaphore_slots_are_shared_with_consul_lock_n)
{
    scratch_dir dir;
    const std::string prefix = prefix_of(agent().unique_prefix("semaphore"));
    const std::string go = dir.file("go");
    const auto holder_script = [&](const std::string& mark) {
        return "echo \"$COLOCK_FENCING_TOKEN\" > " + mark + "; while [ ! -e " + go + " ]; do sleep 0.02; done";
    };
    const std::string colock_mark = dir.file("colock-holding"), consul_mark = dir.file("consul-holding");
    auto colock_run = lock_cmd(tool::colock, {"-n=2", prefix, holder_script(colock_mark)}, dir.file("colock.out"));
    auto consul_run = lock_cmd(tool::consul, {"-n=2", prefix, holder_script(consul_mark)}, dir.file("consul.out"));
    BOOST_TEST_REQUIRE(poll_until([&] { return fs::exists(colock_mark) && fs::exists(consul_mark); }, 20s),
                       "both should hold a slot at once\ncolock:\n"
                           << colock_run->output() << "\nconsul:\n" << consul_run->output());
    const std::string token = read_file(colock_mark);
    BOOST_TEST((token.size() > 1 && token != "0\n"), "colock's slot token: " << token);

    // Both slots are taken: a third contender of either kind gives up after its timeout, without running.
    const std::string ran = dir.file("ran");
    for (tool t : {tool::colock, tool::consul})
        BOOST_TEST(run_lock(t, {"-n=2", "-timeout=1s", prefix, "touch " + ran}, dir) == 1, name_of(t));
    BOOST_TEST(!fs::exists(ran));
    // Another limit on the same prefix is refused by both (limit conflict).
    for (tool t : {tool::colock, tool::consul})
        BOOST_TEST(run_lock(t, {"-n=3", "-timeout=1s", prefix, "touch " + ran}, dir) == 1, name_of(t));
    BOOST_TEST(!fs::exists(ran));
    // A lock (-n 1) on a semaphore's prefix: the .lock key is not a lock (flag conflict).
    for (tool t : {tool::colock, tool::consul})
        BOOST_TEST(run_lock(t, {"-timeout=1s", prefix, "touch " + ran}, dir) == 1, name_of(t));
    BOOST_TEST(!fs::exists(ran));

    std::ofstream(go).put('\n');
    BOOST_TEST(colock_run->exit_code(20s) == 0, colock_run->output());
    BOOST_TEST(consul_run->exit_code(20s) == 0, consul_run->output());
    // The last one out deletes the record. (Contender keys of refused consul lock runs may linger until their
    // sessions expire: consul lock does not always destroy its session before exiting.)
    BOOST_TEST(!colock::test::read_key(prefix + "/.lock").exists);
}

BOOST_AUTO_TEST_SUITE_END()
