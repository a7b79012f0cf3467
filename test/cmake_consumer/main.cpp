// Compiles and links against colock::colock; runs without a network.
#include <colock/colock.hpp>

#include <boost/asio/io_context.hpp>

int main()
{
    boost::asio::io_context ioc;
    colock::consul::client c(ioc.get_executor());
    return c.options().port == 8500 && !colock::is_retryable(make_error_code(colock::errc::not_held)) ? 0 : 1;
}
