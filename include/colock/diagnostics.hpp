#ifndef COLOCK_DIAGNOSTICS_HPP
#define COLOCK_DIAGNOSTICS_HPP

#include <string>

namespace colock {

/// Details of a failed request, beyond its error_code.
///
/// `server_message` is Consul's response text as received: untrusted, possibly long or binary
/// (it is truncated to a few KiB); never interpret it. `client_message` is colock's own wording.
struct diagnostics {
    unsigned http_status = 0;     ///< 0 when no HTTP response was received
    std::string server_message;   ///< body of Consul's error reply (untrusted)
    std::string client_message;   ///< what colock was doing and what went wrong

    void clear()
    {
        http_status = 0;
        server_message.clear();
        client_message.clear();
    }
};

} // namespace colock

#endif
