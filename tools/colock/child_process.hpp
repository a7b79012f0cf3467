#ifndef COLOCK_TOOLS_COLOCK_CHILD_PROCESS_HPP
#define COLOCK_TOOLS_COLOCK_CHILD_PROCESS_HPP

// The child of `colock lock`: started with posix_spawn, waited for without blocking the event loop
// (a pidfd that becomes readable when the child exits; SIGCHLD through an Asio signal_set on kernels
// without pidfd_open), signalled by pid.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/system/error_code.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace colock::tool {

/// How the child ended: `exit_status` (0-255) or the number of the signal that killed it.
struct child_exit {
    bool signalled = false;
    int exit_status = 0;
    int signal = 0;
    bool success() const noexcept { return !signalled && exit_status == 0; }
};

class child_process {
public:
    /// Starts argv[0] (looked up on PATH when it has no '/') with the current environment plus
    /// `extra_env` ("NAME=value", replacing variables of the same name). Stdout and stderr are
    /// inherited; stdin too with `pass_stdin`, else /dev/null. The child stays in colock's process
    /// group and session, as consul lock's does. Returns null and sets `ec` when it cannot start.
    static std::unique_ptr<child_process> spawn(boost::asio::any_io_executor ex, const std::vector<std::string>& argv,
                                                const std::vector<std::string>& extra_env, bool pass_stdin,
                                                boost::system::error_code& ec);

    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;
    ~child_process(); // a child still running is killed (SIGKILL) and reaped

    pid_t pid() const noexcept { return pid_; }
    bool exited() const noexcept { return exit_.has_value(); }

    /// Sends `sig` to the child; nothing once it has been reaped (its pid may be reused).
    void send(int sig) noexcept;

    /// Waits until the child has exited and reaps it. Cancellable (the child keeps running).
    boost::asio::awaitable<child_exit> wait();

private:
    child_process(boost::asio::any_io_executor ex, pid_t pid);
    bool try_reap() noexcept;

    pid_t pid_;
    std::optional<child_exit> exit_;
    std::optional<boost::asio::posix::stream_descriptor> pidfd_; // readable once the child has exited
    std::optional<boost::asio::signal_set> sigchld_;             // without pidfd_open
};

} // namespace colock::tool

#endif
