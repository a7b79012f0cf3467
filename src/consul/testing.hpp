#ifndef COLOCK_SRC_CONSUL_TESTING_HPP
#define COLOCK_SRC_CONSUL_TESTING_HPP

// Test-only access to a client's internals: makes one of its background tasks throw, as an exception
// colock did not expect would (std::bad_alloc, a bug). Tests include it; the library never does.

#include <colock/consul/client.hpp>

#include "consul/client_impl.hpp"

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace colock::consul::testing {

/// The next round of the background task named `task` of `c` throws std::runtime_error, once. Names:
/// "watch" (a key's blocking query loop), "watch poll" (the poller of keys beyond the watch budget),
/// "session create", "session renew", "lock release". Call it on the thread that
/// runs the client's executor (a test's io_context).
inline void fail_next_round(client& c, std::string task)
{
    auto armed = std::make_shared<bool>(true);
    c.impl()->round_hook = [task = std::move(task), armed](std::string_view name) {
        if (*armed && name == task) {
            *armed = false;
            throw std::runtime_error("injected failure in " + task);
        }
    };
}

} // namespace colock::consul::testing

#endif
