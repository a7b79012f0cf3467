#ifndef COLOCK_TOOLS_COLOCK_HOLDER_HPP
#define COLOCK_TOOLS_COLOCK_HOLDER_HPP

// What `colock lock` holds while its child runs: a colock::lock on <prefix>/.lock (-n 1) or a slot of
// the colock::semaphore on <prefix> (-n > 1), behind one interface. Each step is an awaitable that
// completes with an error code instead of throwing, and is cancellable (awaitable_operators' ||).

#include <colock/consul/client.hpp>
#include <colock/consul/session.hpp>
#include <colock/consul/session_id.hpp>
#include <colock/error.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace colock::tool {

struct lock_command_options;

/// Outcome of the cleanup consul lock does after releasing (Go's Lock.Destroy / Semaphore.Destroy):
/// delete the coordination key when nobody uses it.
enum class cleanup_outcome { removed, in_use, failed };

class holder {
public:
    virtual ~holder() = default;

    /// Waits until held. Cancellation leaves nothing held.
    virtual boost::asio::awaitable<error_code> acquire() = 0;
    /// Completes with the reason when the hold ends (a loss).
    virtual boost::asio::awaitable<error_code> lost() = 0;
    /// Gives the hold back; errc::not_held after a loss (nothing to undo).
    virtual boost::asio::awaitable<error_code> release() = 0;
    /// Deletes the coordination key if it is free; `message` says why it failed.
    virtual boost::asio::awaitable<cleanup_outcome> cleanup(std::string& message) = 0;

    virtual std::uint64_t fencing_token() const noexcept = 0;
    virtual std::optional<consul::session_id> session_id() const noexcept = 0;
    /// "lock at path: <key>" / "semaphore (limit N) at prefix: <prefix>", for -verbose.
    virtual std::string describe() const = 0;
};

/// The session of a `colock lock` run: its own (never shared), named as consul lock names it, TTL
/// 15 s (consul lock's); for a lock lock-delay 15 s (consul lock's, the server default), for a
/// semaphore behaviour delete (contender keys vanish with it) and no lock-delay; no health checks
/// (the TTL alone bounds its life, and so colock's trust in it).
consul::session_options tool_session_options(const lock_command_options& o);

/// The holders hold with `s` (created at acquire; the caller closes it at the end).
std::unique_ptr<holder> make_lock_holder(consul::client& c, consul::session& s, const lock_command_options& o);
std::unique_ptr<holder> make_semaphore_holder(consul::client& c, consul::session& s, const lock_command_options& o);

} // namespace colock::tool

#endif
