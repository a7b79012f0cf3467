// Runs an example program against the harness's real Consul agent: starts the agent, points
// CONSUL_HTTP_ADDR at it, runs the example with a deadline and returns its exit status.

#include "consul_agent.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

int main(int argc, char** argv)
{
    if (argc < 2) {
        std::fprintf(stderr, "usage: colock_example_runner <example> [args...]\n");
        return 2;
    }
    try {
        auto& agent = colock::test::consul_agent::instance();
        ::setenv("CONSUL_HTTP_ADDR", agent.http_address().c_str(), 1);
        std::fflush(nullptr);
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::execv(argv[1], argv + 1);
            std::perror("execv");
            ::_exit(127);
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
        int status = 0;
        for (;;) {
            const pid_t r = ::waitpid(pid, &status, WNOHANG);
            if (r == pid)
                break;
            if (std::chrono::steady_clock::now() > deadline) {
                std::fprintf(stderr, "example runner: %s did not finish within 90 s\n", argv[1]);
                ::kill(pid, SIGKILL);
                ::waitpid(pid, &status, 0);
                agent.stop();
                return 1;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        agent.stop();
        if (WIFEXITED(status))
            return WEXITSTATUS(status);
        std::fprintf(stderr, "example runner: %s died with signal %d\n", argv[1], WTERMSIG(status));
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "example runner: %s\n", e.what());
        return 1;
    }
}
