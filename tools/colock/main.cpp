// colock: `colock lock [options] <prefix> <command...>` (lock_command.hpp), and its help.
#include "lock_command.hpp"
#include "lock_command_options.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

namespace {

bool is_help(std::string_view a)
{
    return a == "-h" || a == "-help" || a == "--help" || a == "help";
}

} // namespace

int main(int argc, char** argv)
{
    using namespace colock::tool;
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty() || is_help(args[0])) {
        (args.empty() ? std::cerr : std::cout) << colock_help();
        return args.empty() ? exit_failure : exit_ok;
    }
    if (args[0] != "lock") {
        std::cerr << "colock: unknown command '" << args[0] << "'\n\n" << colock_help();
        return exit_failure;
    }
    const auto parsed = parse_lock_command({args.begin() + 1, args.end()});
    switch (parsed.what) {
    case lock_command_parse::outcome::help:
        std::cout << lock_command_help();
        return exit_ok;
    case lock_command_parse::outcome::usage_error:
        std::cerr << parsed.error << '\n';
        if (parsed.print_usage)
            std::cerr << '\n' << lock_command_help();
        return exit_failure;
    case lock_command_parse::outcome::run:
        break;
    }

    boost::asio::io_context ioc(1);
    int code = exit_failure;
    boost::asio::co_spawn(ioc, run_lock_command(parsed.options), [&code](std::exception_ptr e, int c) {
        code = c;
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                std::cerr << "colock: " << x.what() << '\n';
            }
            code = exit_failure;
        }
    });
    ioc.run();
    return code;
}
