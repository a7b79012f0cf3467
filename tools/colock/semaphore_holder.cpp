// -n N > 1: a slot of the colock::semaphore on <prefix>, the layout consul lock -n uses.
#include "holder.hpp"
#include "lock_command_options.hpp"

#include <colock/semaphore.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <set>

namespace colock::tool {
namespace asio = boost::asio;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

class semaphore_holder final : public holder {
public:
    semaphore_holder(consul::client& c, consul::session& s, const lock_command_options& o)
        : client_(c), semaphore_(c, o.prefix, static_cast<std::uint32_t>(o.limit), make_options(s))
    {
    }

    asio::awaitable<error_code> acquire() override
    {
        auto [ec] = co_await semaphore_.acquire(use_tuple);
        co_return ec;
    }

    asio::awaitable<error_code> lost() override
    {
        auto [ec, reason] = co_await semaphore_.lost(use_tuple);
        co_return ec ? ec : reason;
    }

    asio::awaitable<error_code> release() override
    {
        auto [ec] = co_await semaphore_.release(use_tuple);
        co_return ec;
    }

    // As Go's Semaphore.Destroy: no record is fine; a record with other flags or undecodable is an
    // error; a record naming a live holder (one whose session still holds a key under the prefix) is
    // in use; otherwise delete it if nobody changed it meanwhile.
    asio::awaitable<cleanup_outcome> cleanup(std::string& message) override
    {
        const std::string record_key = semaphore_.prefix() + "/.lock";
        auto [ec, r] = co_await client_.kv_list(semaphore_.prefix() + "/", {}, use_tuple);
        if (ec) {
            message = "failed to read prefix: " + ec.message();
            co_return cleanup_outcome::failed;
        }
        const consul::kv_entry* record = nullptr;
        std::set<std::string> alive;
        for (const auto& e : r.entries) {
            if (e.key == record_key)
                record = &e;
            if (e.session)
                alive.insert(e.session->str());
        }
        if (!record)
            co_return cleanup_outcome::removed;
        if (record->flags != semaphore_flags) {
            message = "Existing key does not match semaphore use";
            co_return cleanup_outcome::failed;
        }
        if (!record->value.empty()) {
            boost::system::error_code jec;
            const auto v = boost::json::parse(record->value, jec);
            const auto* obj = jec ? nullptr : v.if_object();
            if (!obj) {
                message = "lock decoding failed";
                co_return cleanup_outcome::failed;
            }
            if (const auto* holders = obj->if_contains("Holders"); holders && holders->is_object())
                for (const auto& h : holders->get_object())
                    if (alive.contains(std::string(h.key())))
                        co_return cleanup_outcome::in_use;
        }
        auto [dec, deleted] = co_await client_.kv_delete(
            record_key, consul::kv_delete_options::with_cas(record->modify_index), {}, use_tuple);
        if (dec) {
            message = "failed to remove semaphore: " + dec.message();
            co_return cleanup_outcome::failed;
        }
        co_return deleted ? cleanup_outcome::removed : cleanup_outcome::in_use;
    }

    std::uint64_t fencing_token() const noexcept override { return semaphore_.fencing_token(); }
    std::optional<consul::session_id> session_id() const noexcept override { return semaphore_.session_id(); }
    std::string describe() const override
    {
        return "semaphore (limit " + std::to_string(semaphore_.limit()) + ") at prefix: " + semaphore_.prefix();
    }

private:
    static semaphore_options make_options(consul::session& s)
    {
        semaphore_options so;
        so.session = &s;
        return so;
    }

    consul::client& client_;
    colock::semaphore semaphore_;
};

} // namespace

std::unique_ptr<holder> make_semaphore_holder(consul::client& c, consul::session& s, const lock_command_options& o)
{
    return std::make_unique<semaphore_holder>(c, s, o);
}

} // namespace colock::tool
