#include "go_peer.hpp"

#include "async_test.hpp"

#include <boost/test/results_collector.hpp>
#include <boost/test/unit_test.hpp>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <system_error>
#include <unistd.h>

namespace colock::test {

void require_go_peer(const std::string& binary)
{
    if (!binary.empty() && ::access(binary.c_str(), X_OK) == 0)
        return;
    const std::string why = binary.empty() ? "no `go` at configure time, so the Go interop peer was not built"
                                           : "the Go interop peer " + binary + " is not an executable file";
    const char* ci = std::getenv("CI");
    const std::string c = ci ? ci : "";
    if (c.empty() || c == "0" || c == "false" || c == "FALSE" || c == "False") {
        std::printf("SKIP: %s\n", why.c_str());
        std::fflush(stdout);
        std::_Exit(77);
    }
    BOOST_FAIL(why + " (CI is set: the interop tests must not be skipped)");
}

go_peer::go_peer(const std::string& binary, std::vector<std::string> args, std::string output_path)
    : args_(std::move(args)), output_path_(std::move(output_path))
{
    // Everything the child needs is prepared before fork(): after it, only async-signal-safe calls.
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(binary.c_str()));
    for (auto& a : args_)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    const int out = ::open(output_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0)
        throw std::system_error(errno, std::generic_category(), "go peer output " + output_path_);
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) {
        const int e = errno;
        ::close(out);
        throw std::system_error(e, std::generic_category(), "fork for the go peer");
    }
    if (pid_ == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent)
            ::_exit(127);
        const int in = ::open("/dev/null", O_RDONLY);
        if (in >= 0)
            ::dup2(in, 0);
        ::dup2(out, 1);
        ::dup2(out, 2);
        ::execv(binary.c_str(), argv.data());
        ::_exit(127);
    }
    ::close(out);
}

go_peer::~go_peer()
{
    if (running()) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
}

bool go_peer::running()
{
    if (exit_code_ || pid_ <= 0)
        return false;
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == 0)
        return true;
    if (r == pid_)
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    else
        exit_code_ = -1000; // cannot be waited for: treat as gone
    return false;
}

void go_peer::signal(int sig)
{
    if (running())
        ::kill(pid_, sig);
}

std::string go_peer::output() const
{
    std::ifstream in(output_path_, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

scratch_dir::scratch_dir(const std::string& name)
{
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/colock-interop-" + name + "-XXXXXX";
    if (!::mkdtemp(tmpl.data()))
        throw std::system_error(errno, std::generic_category(), "mkdtemp " + tmpl);
    path_ = tmpl;
}

scratch_dir::~scratch_dir()
{
    namespace ut = boost::unit_test;
    if (!ut::results_collector.results(ut::framework::current_test_case().p_id).passed()) {
        BOOST_TEST_MESSAGE("kept the history and peer outputs of the failed test in " << path_);
        return;
    }
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

boost::asio::awaitable<bool> wait_for_exit(go_peer& p, std::chrono::milliseconds limit)
{
    const auto give_up = std::chrono::steady_clock::now() + limit;
    while (p.running()) {
        if (std::chrono::steady_clock::now() >= give_up)
            co_return false;
        co_await sleep_for(std::chrono::milliseconds(5));
    }
    co_return true;
}

} // namespace colock::test
