// Tier B harness self-test: the real-agent harness (test/common/consul_agent.*) starts a working Consul,
// applies the knobs the lock tests rely on, and never leaves an agent behind.

#include "consul_agent.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

// The macro pastes its argument into an identifier, so the fixture is named unqualified.
using colock::test::consul_agent_fixture;
BOOST_TEST_GLOBAL_FIXTURE(consul_agent_fixture);

namespace {

using colock::test::consul_agent;
using namespace std::chrono_literals;

consul_agent& agent() {
    return consul_agent::instance();
}

// Creates a session named `name` with the given TTL; returns the reply.
colock::test::http_reply create_session(const std::string& name, const std::string& ttl) {
    std::string body = R"({"Name":")" + name + R"(","TTL":")" + ttl + R"(","Behavior":"delete","LockDelay":"0s"})";
    return agent().request("PUT", "/v1/session/create", body);
}

std::string session_id(const colock::test::http_reply& reply) {
    auto v = boost::json::parse(reply.body);
    return std::string(v.at("ID").as_string());
}

void destroy_session(const std::string& id) {
    auto r = agent().request("PUT", "/v1/session/destroy/" + id);
    BOOST_TEST(r.status == 200u);
}

// A process that is gone or a zombie (its parent died and nobody reaped it yet).
bool process_dead(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!stat || !std::getline(stat, line)) {
        return true;
    }
    auto paren = line.rfind(')');
    return paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] == 'Z' || line[paren + 2] == 'X';
}

} // namespace

BOOST_AUTO_TEST_SUITE(test_harness)

BOOST_AUTO_TEST_CASE(version_line_is_the_pinned_release) {
    BOOST_TEST_MESSAGE("agent: " << agent().version() << " at " << agent().http_address());
    BOOST_TEST(agent().http_port() != 0u);
    if (agent().started_by_harness()) {
        BOOST_TEST(agent().host() == "127.0.0.1");
        BOOST_TEST(agent().version() == "Consul v" COLOCK_CONSUL_VERSION);
        BOOST_TEST(agent().http_port() != 8500u);
    } else {
        BOOST_TEST(agent().version().rfind("Consul v", 0) == 0u);
    }
}

BOOST_AUTO_TEST_CASE(unique_prefix_is_unique_and_ends_with_a_slash) {
    auto a = agent().unique_prefix("same name");
    auto b = agent().unique_prefix("same name");
    BOOST_TEST(a != b);
    BOOST_TEST(a.rfind("colock-test/" + std::to_string(::getpid()) + "-", 0) == 0u);
    BOOST_TEST(a.back() == '/');
    BOOST_TEST(a.find(' ') == std::string::npos);
    BOOST_TEST(a.ends_with("/same_name/"));
}

BOOST_AUTO_TEST_CASE(kv_put_then_get_round_trips_with_an_index) {
    auto key = agent().unique_prefix("kv_round_trip") + "k";
    auto put = agent().request("PUT", "/v1/kv/" + key, "hello consul");
    BOOST_TEST(put.status == 200u);
    BOOST_TEST(put.body.starts_with("true"), put.body);

    auto get = agent().request("GET", "/v1/kv/" + key + "?raw");
    BOOST_TEST(get.status == 200u);
    BOOST_TEST(get.body == "hello consul");
    BOOST_TEST(get.headers.count("x-consul-index") == 1u);
    BOOST_TEST(std::strtoull(get.header("x-consul-index").c_str(), nullptr, 10) > 0u);
    BOOST_TEST(get.header("x-consul-knownleader") == "true");

    auto json = agent().request("GET", "/v1/kv/" + key);
    BOOST_TEST(json.status == 200u);
    auto entry = boost::json::parse(json.body).as_array().at(0).as_object();
    BOOST_TEST(std::string(entry.at("Key").as_string()) == key);
    BOOST_TEST(entry.at("ModifyIndex").to_number<std::uint64_t>() ==
               std::strtoull(json.header("x-consul-index").c_str(), nullptr, 10));

    BOOST_TEST(agent().request("DELETE", "/v1/kv/" + key).status == 200u);
    auto gone = agent().request("GET", "/v1/kv/" + key);
    BOOST_TEST(gone.status == 404u);
    BOOST_TEST(!gone.header("x-consul-index").empty());
}

BOOST_AUTO_TEST_CASE(keys_under_lists_keys_recursively_and_nothing_when_empty) {
    auto prefix = agent().unique_prefix("keys_under");
    BOOST_TEST(agent().keys_under(prefix).empty());
    for (const char* k : {"a", "b/c", "b/d/e"}) {
        BOOST_TEST(agent().request("PUT", "/v1/kv/" + prefix + k, "x").status == 200u);
    }
    std::vector<std::string> expected = {prefix + "a", prefix + "b/c", prefix + "b/d/e"};
    BOOST_TEST(agent().keys_under(prefix) == expected, boost::test_tools::per_element());
    BOOST_TEST(agent().keys_under(prefix + "b/").size() == 2u);

    BOOST_TEST(agent().request("DELETE", "/v1/kv/" + prefix + "?recurse").status == 200u);
    BOOST_TEST(agent().keys_under(prefix).empty());
}

BOOST_AUTO_TEST_CASE(sessions_named_finds_a_session_by_name_prefix) {
    std::string name = "colock-harness-" + std::to_string(::getpid()) + "-sessions_named";
    BOOST_TEST(agent().sessions_named(name).empty());
    auto created = create_session(name + "-one", "10s");
    BOOST_TEST_REQUIRE(created.status == 200u, "session create: " << created.status << " " << created.body);
    auto id = session_id(created);

    auto found = agent().sessions_named(name);
    BOOST_TEST_REQUIRE(found.size() == 1u);
    BOOST_TEST(found.front() == id);
    BOOST_TEST(agent().sessions_named(name + "-one").size() == 1u);
    BOOST_TEST(agent().sessions_named(name + "-two").empty());

    destroy_session(id);
    BOOST_TEST(agent().sessions_named(name).empty());
}

BOOST_AUTO_TEST_CASE(session_ttl_of_one_second_is_accepted) {
    std::string name = "colock-harness-" + std::to_string(::getpid()) + "-ttl";
    auto created = create_session(name, "1s");
    BOOST_TEST_REQUIRE(created.status == 200u, "TTL 1s: " << created.status << " " << created.body);
    auto id = session_id(created);
    auto info = agent().request("GET", "/v1/session/info/" + id);
    BOOST_TEST(info.status == 200u);
    auto sessions = boost::json::parse(info.body).as_array();
    BOOST_TEST_REQUIRE(sessions.size() == 1u, info.body);
    BOOST_TEST(std::string(sessions.at(0).at("TTL").as_string()) == "1s");
    destroy_session(id);

    if (agent().started_by_harness()) {
        // The floor is session_ttl_min = "1s" exactly (CONSUL.md 8.4): below it Consul answers 500.
        auto below = create_session(name + "-below", "500ms");
        BOOST_TEST(below.status == 500u);
        BOOST_TEST(below.body.find("Invalid Session TTL") != std::string::npos, below.body);
        if (below.status == 200u) {
            destroy_session(session_id(below));
        }
    }
    BOOST_TEST(agent().sessions_named(name).empty());
}

BOOST_AUTO_TEST_CASE(request_returns_error_statuses_without_throwing) {
    auto r = agent().request("GET", "/v1/no/such/endpoint");
    BOOST_TEST(r.status == 404u);
    auto bad = agent().request("PUT", "/v1/session/create", "{not json");
    BOOST_TEST(bad.status == 400u);
}

// Kills a test process that holds an agent (a child running this same case with COLOCK_HARNESS_CHILD=1) and checks
// that its agent dies with it (PR_SET_PDEATHSIG) and that its temp dir is found stale and removed.
BOOST_AUTO_TEST_CASE(agent_dies_when_its_test_process_is_killed) {
    if (std::getenv("COLOCK_HARNESS_CHILD") != nullptr) { // the child: report the agent, wait to be killed
        std::cout << "CHILD_AGENT " << agent().pid() << ' ' << agent().temp_dir() << std::endl;
        std::this_thread::sleep_for(60s);
        return;
    }
    if (!agent().started_by_harness()) {
        BOOST_TEST_MESSAGE("CONSUL_HTTP_ADDR is set: no agent of ours to kill");
        return;
    }
    auto exe = std::filesystem::read_symlink("/proc/self/exe").string();
    int out[2];
    BOOST_TEST_REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    std::string arg = "--run_test=test_harness/agent_dies_when_its_test_process_is_killed";
    char* argv[] = {exe.data(), arg.data(), nullptr};
    std::vector<char*> envp;
    for (char** e = environ; *e != nullptr; ++e) {
        envp.push_back(*e);
    }
    std::string child_flag = "COLOCK_HARNESS_CHILD=1";
    envp.push_back(child_flag.data());
    envp.push_back(nullptr);
    const pid_t parent = ::getpid();
    pid_t child = ::fork();
    BOOST_TEST_REQUIRE(child >= 0);
    if (child == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL); // never outlive this test
        if (::getppid() != parent) {
            ::_exit(127);
        }
        ::dup2(out[1], 1);
        ::execve(argv[0], argv, envp.data());
        ::_exit(127);
    }
    ::close(out[1]);
    struct child_guard {
        pid_t pid;
        int fd;
        ~child_guard() {
            if (pid > 0) {
                ::kill(pid, SIGKILL);
                ::waitpid(pid, nullptr, 0);
            }
            ::close(fd);
        }
    } guard{child, out[0]};

    // Read the child's stdout until it names its agent (its own start, usually well under a second).
    std::string text;
    pid_t agent_pid = 0;
    std::string temp_dir;
    auto deadline = std::chrono::steady_clock::now() + 45s;
    while (agent_pid == 0 && std::chrono::steady_clock::now() < deadline) {
        pollfd p{out[0], POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) {
            continue;
        }
        char buf[4096];
        auto n = ::read(out[0], buf, sizeof buf);
        if (n <= 0) {
            break;
        }
        text.append(buf, static_cast<std::size_t>(n));
        auto at = text.find("CHILD_AGENT ");
        if (at != std::string::npos && text.find('\n', at) != std::string::npos) {
            std::istringstream line(text.substr(at + 12));
            line >> agent_pid >> temp_dir;
        }
    }
    BOOST_TEST_REQUIRE(agent_pid > 0, "the child did not report its agent; its output:\n" << text);
    BOOST_TEST(agent_pid != agent().pid());
    BOOST_TEST(!process_dead(agent_pid));
    BOOST_TEST(std::filesystem::is_directory(temp_dir));

    auto killed = std::chrono::steady_clock::now();
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    guard.pid = 0;
    while (!process_dead(agent_pid) && std::chrono::steady_clock::now() - killed < 5s) {
        std::this_thread::sleep_for(10ms);
    }
    BOOST_TEST(process_dead(agent_pid), "the child's agent " << agent_pid << " outlived its SIGKILLed test process");
    BOOST_TEST_MESSAGE("the child's agent died "
                       << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                                killed)
                              .count()
                       << " ms after the SIGKILL");

    // A SIGKILLed test cannot clean up; the next start anywhere (or this call) removes its temp dir. (Another test
    // process starting its agent right now may be the one that removes it, so only the result is checked.)
    consul_agent::remove_stale_temp_dirs();
    BOOST_TEST(!std::filesystem::exists(temp_dir), temp_dir << " was not removed");
}

BOOST_AUTO_TEST_CASE(this_process_left_no_keys_or_sessions) {
    BOOST_TEST(agent().keys_under("colock-test/" + std::to_string(::getpid()) + "-").empty());
    BOOST_TEST(agent().sessions_named("colock-harness-" + std::to_string(::getpid())).empty());
}

BOOST_AUTO_TEST_SUITE_END()
