// -n 1: a colock::lock on <prefix>/.lock, the key and flags consul lock uses.
#include "holder.hpp"
#include "lock_command_options.hpp"

#include <colock/lock.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace colock::tool {
namespace asio = boost::asio;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

class lock_holder final : public holder {
public:
    lock_holder(consul::client& c, consul::session& s, const lock_command_options& o)
        : client_(c), key_(o.lock_key()), lock_(c, key_, make_options(s))
    {
    }

    asio::awaitable<error_code> acquire() override
    {
        auto [ec] = co_await lock_.acquire(use_tuple);
        co_return ec;
    }

    asio::awaitable<error_code> lost() override
    {
        auto [ec, reason] = co_await lock_.lost(use_tuple);
        co_return ec ? ec : reason;
    }

    asio::awaitable<error_code> release() override
    {
        auto [ec] = co_await lock_.release(use_tuple);
        co_return ec;
    }

    // As Go's Lock.Destroy: an absent key is fine; a key with other flags is not a lock; a held key
    // is in use; otherwise delete it if nobody changed it meanwhile.
    asio::awaitable<cleanup_outcome> cleanup(std::string& message) override
    {
        auto [ec, r] = co_await client_.kv_get(key_, {}, use_tuple);
        if (ec) {
            message = "failed to read lock: " + ec.message();
            co_return cleanup_outcome::failed;
        }
        if (!r.entry)
            co_return cleanup_outcome::removed;
        if (r.entry->flags != lock_flags) {
            message = "Existing key does not match lock use";
            co_return cleanup_outcome::failed;
        }
        if (r.entry->session)
            co_return cleanup_outcome::in_use;
        auto [dec, deleted] = co_await client_.kv_delete(key_, consul::kv_delete_options::with_cas(r.entry->modify_index),
                                                         {}, use_tuple);
        if (dec) {
            message = "failed to remove lock: " + dec.message();
            co_return cleanup_outcome::failed;
        }
        co_return deleted ? cleanup_outcome::removed : cleanup_outcome::in_use;
    }

    std::uint64_t fencing_token() const noexcept override { return lock_.fencing_token(); }
    std::optional<consul::session_id> session_id() const noexcept override { return lock_.session_id(); }
    std::string describe() const override { return "lock at path: " + key_; }

private:
    static lock_options make_options(consul::session& s)
    {
        lock_options lo;
        lo.session = &s;
        return lo; // the value stays empty, as consul lock writes it
    }

    consul::client& client_;
    std::string key_;
    colock::lock lock_;
};

} // namespace

consul::session_options tool_session_options(const lock_command_options& o)
{
    consul::session_options s;
    s.name = o.session_name();
    s.ttl = std::chrono::seconds(15);
    if (o.limit > 1) {
        s.behavior = consul::session_behavior::delete_keys;
        s.lock_delay = std::chrono::milliseconds(0);
    } else {
        s.lock_delay = std::chrono::seconds(15);
    }
    s.node_checks.emplace(); // no checks: the TTL alone bounds the session's life (and our trust in it)
    return s;
}

std::unique_ptr<holder> make_lock_holder(consul::client& c, consul::session& s, const lock_command_options& o)
{
    return std::make_unique<lock_holder>(c, s, o);
}

} // namespace colock::tool
