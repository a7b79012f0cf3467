#ifndef COLOCK_CONSUL_SESSION_ID_HPP
#define COLOCK_CONSUL_SESSION_ID_HPP

#include <compare>
#include <ostream>
#include <string>
#include <string_view>

namespace colock::consul {

/// The ID of a Consul session (a UUID string). A strong type so it is never confused with a key or
/// a value. Consul issues it; colock never invents one.
class session_id {
public:
    session_id() = default;
    explicit session_id(std::string value) : value_(std::move(value)) {}

    const std::string& str() const noexcept { return value_; }
    bool empty() const noexcept { return value_.empty(); }

    friend bool operator==(const session_id&, const session_id&) = default;
    friend auto operator<=>(const session_id&, const session_id&) = default;
    friend std::ostream& operator<<(std::ostream& os, const session_id& id) { return os << id.value_; }

private:
    std::string value_;
};

} // namespace colock::consul

#endif
