#include "history_file.hpp"

#include <cerrno>
#include <chrono>
#include <fcntl.h>
#include <system_error>
#include <unistd.h>

namespace colock::test {

namespace {

std::uint64_t unix_ns()
{
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

} // namespace

history_file::history_file(const std::string& path)
    : fd_(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644))
{
    if (fd_ < 0)
        throw std::system_error(errno, std::generic_category(), "history file " + path);
}

history_file::~history_file()
{
    if (fd_ >= 0)
        ::close(fd_);
}

std::string history_file::line(std::string_view who, std::string_view ev, std::uint64_t t_ns, std::uint64_t token)
{
    std::string s = R"({"who":")";
    s.append(who);
    s += R"(","ev":")";
    s.append(ev);
    s += R"(","t":)" + std::to_string(t_ns);
    if (token != 0)
        s += R"(,"token":)" + std::to_string(token);
    s += "}\n";
    return s;
}

void history_file::enter(std::string_view who, std::uint64_t token) { append(line(who, "enter", unix_ns(), token)); }

void history_file::exit(std::string_view who) { append(line(who, "exit", unix_ns())); }

void history_file::append(const std::string& l)
{
    // One write(): with O_APPEND the line lands whole at the end, never split by another process's line.
    const auto n = ::write(fd_, l.data(), l.size());
    if (n != static_cast<::ssize_t>(l.size()))
        throw std::system_error(n < 0 ? errno : EIO, std::generic_category(), "history file: short write");
}

} // namespace colock::test
