#ifndef COLOCK_TEST_COMMON_PRINTERS_HPP
#define COLOCK_TEST_COMMON_PRINTERS_HPP

// How Boost.Test prints colock's enums in failed assertions.

#include <colock/consul/session_options.hpp>
#include <colock/error.hpp>

#include <ostream>

namespace colock {
inline std::ostream& boost_test_print_type(std::ostream& os, errc e) { return os << make_error_code(e).message(); }
inline std::ostream& boost_test_print_type(std::ostream& os, condition c)
{
    return os << make_error_condition(c).message();
}
} // namespace colock

namespace colock::consul {
inline std::ostream& boost_test_print_type(std::ostream& os, session_behavior b)
{
    return os << (b == session_behavior::release ? "release" : "delete");
}
} // namespace colock::consul

#endif
