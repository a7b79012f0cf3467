#ifndef COLOCK_TOOLS_COLOCK_LOCK_COMMAND_HPP
#define COLOCK_TOOLS_COLOCK_LOCK_COMMAND_HPP

// `colock lock`: acquire, run the child while watching for loss and signals, stop the child, release,
// clean up, destroy the session; the steps and exit codes of consul lock (command/lock/lock.go).

#include "lock_command_options.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>

namespace colock::tool {

/// How long a child gets between SIGTERM and SIGKILL (consul lock's lockKillGracePeriod).
inline constexpr std::chrono::seconds kill_grace_period{5};

/// Runs `colock lock` on the calling coroutine's executor; completes with the exit code. Installs
/// handlers for SIGINT, SIGTERM and SIGHUP for its whole run.
boost::asio::awaitable<int> run_lock_command(const lock_command_options& options);

} // namespace colock::tool

#endif
