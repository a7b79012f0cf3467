// Stand-in until the library has colock::semaphore: -n > 1 reports that it is unsupported.
#include "holder.hpp"

namespace colock::tool {

std::unique_ptr<holder> make_semaphore_holder(consul::client&, consul::session&, const lock_command_options&)
{
    return nullptr;
}

} // namespace colock::tool
