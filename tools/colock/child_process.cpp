#include "child_process.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <set>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace colock::tool {
namespace asio = boost::asio;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// pidfd_open(2) (Linux 5.3); -1 with errno set where it is missing.
int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

std::vector<std::string> child_environment(const std::vector<std::string>& extra)
{
    std::set<std::string> replaced;
    for (const auto& e : extra)
        replaced.insert(e.substr(0, e.find('=')));
    std::vector<std::string> env;
    for (char** p = environ; p && *p; ++p) {
        const std::string entry(*p);
        if (!replaced.contains(entry.substr(0, entry.find('='))))
            env.push_back(entry);
    }
    env.insert(env.end(), extra.begin(), extra.end());
    return env;
}

std::vector<char*> c_strings(std::vector<std::string>& v)
{
    std::vector<char*> out;
    for (auto& s : v)
        out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

} // namespace

child_process::child_process(asio::any_io_executor ex, pid_t pid) : pid_(pid)
{
    const int fd = open_pidfd(pid);
    if (fd >= 0) {
        pidfd_.emplace(ex, fd);
    } else {
        sigchld_.emplace(ex, SIGCHLD);
    }
}

std::unique_ptr<child_process> child_process::spawn(asio::any_io_executor ex, const std::vector<std::string>& argv,
                                                    const std::vector<std::string>& extra_env, bool pass_stdin,
                                                    boost::system::error_code& ec)
{
    ec = {};
    if (argv.empty() || argv[0].empty()) {
        ec = make_error_code(boost::system::errc::invalid_argument);
        return nullptr;
    }
    auto args = argv;
    auto env = child_environment(extra_env);
    auto c_args = c_strings(args);
    auto c_env = c_strings(env);

    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    if (!pass_stdin)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    // The child starts with no signal blocked, whatever this process blocks, and with the signals the
    // tool forwards at their default action: one ignored when the tool started (a background job of a
    // shell starts with SIGINT ignored) would otherwise stay ignored in the child, which then could
    // neither trap it nor die of it.
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    sigset_t forwarded;
    sigemptyset(&forwarded);
    for (int sig : {SIGINT, SIGTERM, SIGHUP})
        sigaddset(&forwarded, sig);
    posix_spawnattr_setsigdefault(&attr, &forwarded);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    pid_t pid = 0;
    const int rc = ::posix_spawnp(&pid, c_args[0], &actions, &attr, c_args.data(), c_env.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        ec = boost::system::error_code(rc, boost::system::system_category());
        return nullptr;
    }
    return std::unique_ptr<child_process>(new child_process(std::move(ex), pid));
}

child_process::~child_process()
{
    if (exit_)
        return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
}

void child_process::send(int sig) noexcept
{
    if (!exit_)
        ::kill(pid_, sig);
}

bool child_process::try_reap() noexcept
{
    int status = 0;
    pid_t r;
    do {
        r = ::waitpid(pid_, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0)
        return false;
    child_exit e;
    if (r == pid_ && WIFSIGNALED(status)) {
        e.signalled = true;
        e.signal = WTERMSIG(status);
    } else if (r == pid_) {
        e.exit_status = WEXITSTATUS(status);
    } else {
        e.exit_status = 255; // reaped elsewhere (should not happen): count it as a failure
    }
    exit_ = e;
    return true;
}

asio::awaitable<child_exit> child_process::wait()
{
    while (!exit_ && !try_reap()) {
        if (pidfd_) {
            auto [ec] = co_await pidfd_->async_wait(asio::posix::descriptor_base::wait_read, use_tuple);
            if (ec == asio::error::operation_aborted)
                throw boost::system::system_error(ec);
        } else {
            auto [ec, sig] = co_await sigchld_->async_wait(use_tuple);
            (void)sig;
            if (ec == asio::error::operation_aborted)
                throw boost::system::system_error(ec);
        }
    }
    co_return *exit_;
}

} // namespace colock::tool
