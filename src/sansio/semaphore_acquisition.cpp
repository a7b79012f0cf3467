#include "sansio/semaphore_acquisition.hpp"
#include "sansio/semaphore_record.hpp"

#include <colock/semaphore_options.hpp>

#include <algorithm>

namespace colock::detail {

using consul::kv_entry;
using consul::txn_op;

semaphore_acquisition::semaphore_acquisition(semaphore_acquisition_params params, consul::session_id session)
    : params_(std::move(params)), session_(std::move(session)), delays_(params_.retry_initial, params_.retry_max)
{
}

void semaphore_acquisition::start(std::optional<kv_entry> own_write)
{
    own_write_ = std::move(own_write);
    contend();
}

void semaphore_acquisition::contend()
{
    const auto contender_key = params_.prefix + '/' + session_.str();
    if (own_write_) {
        auto quick = decide_from_own_write(*own_write_, params_.limit, session_.str());
        own_write_.reset(); // one try: a stale view costs only this transaction
        if (quick) {
            ops_ = {txn_op::lock(contender_key, session_, params_.value, semaphore_flags),
                    txn_op::cas(params_.prefix + "/.lock", quick->record, quick->cas_index, semaphore_flags)};
            record_ = std::move(quick->record);
            step_ = semaphore_step::write_quick;
            return;
        }
    }
    ops_ = {txn_op::lock(contender_key, session_, params_.value, semaphore_flags), txn_op::get_tree(params_.prefix + '/')};
    step_ = semaphore_step::write_contender;
}

void semaphore_acquisition::list()
{
    ops_.clear();
    step_ = semaphore_step::list;
}

void semaphore_acquisition::take_listing(std::vector<kv_entry> entries, std::uint64_t index)
{
    listed_ = true;
    listing_ = std::move(entries);
    listing_index_ = index;
}

void semaphore_acquisition::decide()
{
    ops_.clear();
    auto d = decide_semaphore_acquire(make_semaphore_snapshot(listing_, params_.prefix), params_.limit, session_.str());
    switch (d.what) {
    case semaphore_decision::kind::failed:
        if (d.error == errc::limit_conflict)
            conflicting_limit_ = d.record_limit;
        fail(d.error);
        return;
    case semaphore_decision::kind::wait:
        step_ = params_.try_once ? semaphore_step::not_acquired : semaphore_step::wait_change;
        return;
    case semaphore_decision::kind::already_holder:
        // An earlier write of unknown outcome won. Take it out and start over: a fresh write gives a
        // fresh fencing token (that one may be shared with a later holder's).
        step_ = semaphore_step::withdraw;
        return;
    case semaphore_decision::kind::take:
        ops_ = {txn_op::cas(params_.prefix + "/.lock", d.record, d.cas_index, semaphore_flags)};
        record_ = std::move(d.record);
        step_ = semaphore_step::write_record;
        return;
    }
}

void semaphore_acquisition::hold(kv_entry written, std::string record)
{
    held_ = std::move(written);
    held_.value = std::move(record);
    held_.flags = semaphore_flags;
    ops_.clear();
    step_ = semaphore_step::held;
}

void semaphore_acquisition::fail(error_code ec)
{
    error_ = ec;
    ops_.clear();
    step_ = semaphore_step::failed;
}

bool semaphore_acquisition::count_error(error_code ec)
{
    ++errors_;
    error_ = ec;
    return params_.max_consecutive_errors != 0 && errors_ >= params_.max_consecutive_errors;
}

void semaphore_acquisition::back_off(semaphore_step then)
{
    after_backoff_ = then;
    step_ = semaphore_step::backoff;
}

std::chrono::milliseconds semaphore_acquisition::delay(double unit_random) const noexcept
{
    auto next = delays_; // counted by on_backoff_done()
    return next.next(unit_random);
}

void semaphore_acquisition::on_write(error_code ec, const consul::txn_result& result)
{
    const bool unknown = ec == errc::indeterminate_write || ec == errc::request_timeout;
    switch (step_) {
    case semaphore_step::write_quick:
        contender_sent_ = true;
        if (!ec && result.committed && result.results.size() >= 2) {
            hold(result.results[1], std::move(record_));
            return;
        }
        if (ec) { // unknown outcome: we may be in the record, a consistent read will tell
            resolving_ = true;
            if (count_error(ec)) {
                fail(ec);
                return;
            }
        }
        contend(); // rolled back: the record changed (or our session is in doubt); the full path follows
        return;
    case semaphore_step::write_contender:
        contender_sent_ = true;
        if (!ec && result.committed && !result.results.empty()) {
            // Read by the leader in the write (resolves too), as of the write's index: our key's.
            std::vector<kv_entry> tree(result.results.begin() + 1, result.results.end());
            std::uint64_t index = 0;
            for (const auto& x : tree)
                index = std::max(index, x.modify_index);
            take_listing(std::move(tree), index);
            resolving_ = false;
            errors_ = 0;
            decide();
            return;
        }
        if (!ec) {
            if (semaphore_rollback_error(result) == make_http_error(403)) {
                fail(make_http_error(403)); // an ACL denies our contender key
                return;
            }
            // A key named after our session cannot be held by another one: our session is in doubt.
            if (count_error(make_error_code(errc::conflict)))
                fail(make_error_code(errc::conflict));
            else
                step_ = semaphore_step::renew_session;
            return;
        }
        if (count_error(ec) || (!is_retryable(ec) && !unknown)) {
            fail(ec);
            return;
        }
        back_off(semaphore_step::write_contender);
        return;
    case semaphore_step::write_record:
        if (!ec && result.committed && !result.results.empty()) {
            hold(result.results.front(), std::move(record_));
            return;
        }
        if (!ec) {
            const auto why = semaphore_rollback_error(result);
            if (!why) {
                list(); // raced with another contender: list again at once
                return;
            }
            if (count_error(why) || why == make_http_error(403)) {
                fail(why);
                return;
            }
            back_off(semaphore_step::list);
            return;
        }
        if (unknown)
            resolving_ = true;
        if (count_error(ec) || (!resolving_ && !is_retryable(ec))) {
            fail(ec);
            return;
        }
        back_off(semaphore_step::list);
        return;
    default:
        return; // no write in progress
    }
}

void semaphore_acquisition::on_list(error_code ec, std::vector<kv_entry> entries, std::uint64_t index)
{
    if (ec) {
        if (count_error(ec) || !is_retryable(ec))
            fail(ec);
        else
            back_off(semaphore_step::list);
        return;
    }
    errors_ = 0;
    resolving_ = false;
    take_listing(std::move(entries), index);
    decide();
}

void semaphore_acquisition::on_change(error_code ec, std::vector<kv_entry> entries, std::uint64_t index)
{
    if (ec) { // the watch retries by itself; we list the prefix ourselves after a pause
        if (count_error(ec) || !is_retryable(ec))
            fail(ec);
        else
            back_off(semaphore_step::list);
        return;
    }
    errors_ = 0;
    take_listing(std::move(entries), index);
    decide();
}

void semaphore_acquisition::on_withdrawn(error_code ec, std::optional<kv_entry> own_write)
{
    own_write_ = std::move(own_write);
    if (ec && count_error(ec)) {
        fail(ec);
        return;
    }
    contend();
}

void semaphore_acquisition::on_session(error_code ec, const consul::session_id& session)
{
    if (ec) {
        fail(ec);
        return;
    }
    const bool same = session == session_;
    session_ = session;
    if (same) // the same live session: not a session problem, back off
        back_off(semaphore_step::write_contender);
    else
        contend();
}

void semaphore_acquisition::on_backoff_done()
{
    delays_.next(0.0); // the pause is over: the next one may be longer
    if (after_backoff_ == semaphore_step::write_contender)
        contend();
    else
        list();
}

void semaphore_acquisition::on_abandoned(error_code why)
{
    if (step_ == semaphore_step::write_quick || step_ == semaphore_step::write_contender)
        contender_sent_ = true;
    fail(why);
}

} // namespace colock::detail
