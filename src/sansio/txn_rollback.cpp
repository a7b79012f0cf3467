#include "sansio/txn_rollback.hpp"

namespace colock::detail {

std::string rollback_reason(const std::string& what)
{
    std::string out;
    bool quoted = false;
    for (std::size_t i = 0; i < what.size(); ++i) {
        const char c = what[i];
        if (quoted && c == '\\' && i + 1 < what.size()) {
            ++i;
            continue;
        }
        if (c == '"')
            quoted = !quoted;
        else if (!quoted)
            out += c;
    }
    return out;
}

} // namespace colock::detail
