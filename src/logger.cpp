#include <colock/logger.hpp>

#include <cstdio>

namespace colock {

std::string_view to_string(logger::level l) noexcept
{
    switch (l) {
    case logger::level::debug: return "debug";
    case logger::level::info: return "info";
    case logger::level::warning: return "warning";
    case logger::level::error: return "error";
    case logger::level::disabled: return "disabled";
    }
    return "unknown";
}

void logger::log(level l, std::string_view message) const
{
    if (!enabled(l))
        return;
    if (sink) {
        // A throwing sink must not unwind through colock's background loops (it would end them silently).
        try {
            sink(l, message);
        } catch (...) {
            std::fputs("colock: the log sink threw; a message was lost\n", stderr);
        }
        return;
    }
    std::fprintf(stderr, "colock [%.*s] %.*s\n", static_cast<int>(to_string(l).size()), to_string(l).data(),
                 static_cast<int>(message.size()), message.data());
}

} // namespace colock
