#ifndef COLOCK_TEST_COMMON_GO_PEER_HPP
#define COLOCK_TEST_COMMON_GO_PEER_HPP

// The interoperability tests' Go peer (test/interop/go, built by test/CMakeLists.txt) as a child process:
// started with its flags, its stdout and stderr in a file, watched without blocking the test's io_context,
// and stopped by signal. A test process that dies takes its peers with it (PR_SET_PDEATHSIG).

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace colock::test {

/// The peer binary the interop tests were built with (COLOCK_INTEROP_PEER); outside CI an empty path
/// (no Go at configure time) makes the test process print `SKIP: ...` and exit 77, in CI it fails.
void require_go_peer(const std::string& binary);

class go_peer {
public:
    /// Starts `binary args...`; its stdout and stderr go to `output_path` (created or truncated).
    /// Throws std::system_error when it cannot start.
    go_peer(const std::string& binary, std::vector<std::string> args, std::string output_path);
    go_peer(const go_peer&) = delete;
    go_peer& operator=(const go_peer&) = delete;
    /// SIGKILLs the peer if it still runs, and reaps it.
    ~go_peer();

    pid_t pid() const noexcept { return pid_; }
    /// Reaps the peer if it has ended (never blocks); true while it runs.
    bool running();
    /// Sends `sig` while it runs.
    void signal(int sig);
    /// Its exit code once it has ended: 0..255, or minus the signal number that ended it.
    std::optional<int> exit_code() const noexcept { return exit_code_; }
    /// What it printed so far (stdout and stderr).
    std::string output() const;
    const std::vector<std::string>& args() const noexcept { return args_; }

private:
    std::vector<std::string> args_;
    std::string output_path_;
    pid_t pid_ = -1;
    std::optional<int> exit_code_;
};

/// A fresh directory under $TMPDIR for one test's history and peer outputs. The destructor removes it
/// when the current test case has passed, and keeps it (naming it in the log) when it failed.
class scratch_dir {
public:
    explicit scratch_dir(const std::string& name);
    scratch_dir(const scratch_dir&) = delete;
    scratch_dir& operator=(const scratch_dir&) = delete;
    ~scratch_dir();

    const std::string& path() const noexcept { return path_; }
    /// `path()/name`.
    std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

/// Polls (on the test's io_context) until the peer has ended; false if it still runs after `limit`.
boost::asio::awaitable<bool> wait_for_exit(go_peer& p, std::chrono::milliseconds limit);

} // namespace colock::test

#endif
