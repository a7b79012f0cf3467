// colock::semaphore against the scripted fake agent: an ACL that denies its writes (Consul rolls the
// transaction back with "Permission denied") ends acquire() with HTTP 403 at once, without retrying in a loop.

#include <colock/consul/client.hpp>
#include <colock/semaphore.hpp>

#include "async_test.hpp"
#include "fake_agent.hpp"
#include "fault_helpers.hpp"
#include "test_options.hpp"

#include <string>

namespace asio = boost::asio;
using namespace colock;
using namespace colock::consul;
using namespace colock::test;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(writes_denied_by_an_acl_end_acquire_with_403_and_leave_no_retry_loop)
{
    fake_agent fake;
    fake.push(fake_step::respond(fake_agent::reply(200, R"({"ID":"adf4238a-882b-9ddc-4a9d-5b6758e4159e"})")));
    // Every further request: a transaction rolled back for want of permission (reads included, which a
    // real agent would answer otherwise; the semaphore must stop either way).
    fake.set_default(fake_step::respond(
        fake_agent::reply(409, R"({"Results":null,"Errors":[{"OpIndex":0,"What":"Permission denied"}]})")));
    error_code result;
    bool completed = false;
    long long took = 0;
    with_client(
        fake_agent_options(fake.port()),
        [&](client& c, asio::io_context&) -> asio::awaitable<void> {
            semaphore s(c, "jobs/render", 2);
            const auto t0 = clock_type::now();
            auto [ec] = co_await s.acquire(tuple_awaitable);
            took = ms_since(t0);
            result = ec;
            completed = true;
            BOOST_TEST(!s.is_held());
        },
        10s);
    BOOST_TEST_REQUIRE(completed);
    BOOST_TEST(result == make_http_error(403), result.message());
    BOOST_TEST(took < 3000, took << " ms");
    const auto requests = fake.requests().size();
    BOOST_TEST_MESSAGE(requests << " requests in all, acquire completed after " << took << " ms");
    BOOST_TEST(requests < 20u, requests << " requests"); // create, contender write, a bounded clean-up, destroy
}
