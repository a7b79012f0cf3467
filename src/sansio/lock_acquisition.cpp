#include "sansio/lock_acquisition.hpp"
#include "sansio/txn_rollback.hpp"

#include <algorithm>

namespace colock::detail {

using consul::txn_op;
using std::chrono::milliseconds;

namespace {

// Equal jitter: half the ceiling, plus a random part of the other half (never zero, never in step).
milliseconds jittered(milliseconds ceiling, double unit_random)
{
    const auto half = ceiling.count() / 2;
    return milliseconds(half + static_cast<milliseconds::rep>(unit_random * static_cast<double>(ceiling.count() - half)));
}

milliseconds doubled(milliseconds initial, unsigned times, milliseconds cap)
{
    auto d = initial;
    for (unsigned i = 0; i < times && d < cap; ++i)
        d *= 2;
    return std::min(d, cap);
}
} // namespace

lock_acquisition::lock_acquisition(lock_acquisition_params params, consul::session_id session)
    : params_(std::move(params)), session_(std::move(session))
{
}

void lock_acquisition::set_backoff(milliseconds retry_initial, milliseconds retry_max, milliseconds lock_delay_max) noexcept
{
    retry_initial_ = std::max(retry_initial, milliseconds(1));
    retry_max_ = std::max(retry_max, retry_initial_);
    lock_delay_max_ = std::max(lock_delay_max, milliseconds(1));
}

void lock_acquisition::start(std::optional<std::optional<consul::kv_entry>> known_key, std::uint64_t known_index)
{
    if (known_key) {
        known_ = true;
        remembered_ = true;
        entry_ = std::move(*known_key);
        index_ = known_index;
    }
    decide();
}

void lock_acquisition::decide()
{
    ops_.clear();
    const auto& k = params_.key;
    if (!known_ || !entry_) {
        // Absent, or never seen: guess absent. If the key exists, the check fails and a read follows.
        ops_ = {txn_op::check_not_exists(k), txn_op::lock(k, session_, params_.value, params_.flags)};
        step_ = acquire_step::write;
        return;
    }
    if (entry_->flags != params_.flags) {
        if (remembered_) { // other flags once need not mean other flags now: ask Consul
            remembered_ = false;
            step_ = acquire_step::read;
            return;
        }
        fail(make_error_code(errc::conflict));
        return;
    }
    if (entry_->session && *entry_->session != session_) {
        if (params_.try_once)
            // A holder we only remember may be gone: one answer must come from Consul itself.
            step_ = remembered_ ? acquire_step::read : acquire_step::not_acquired;
        else
            step_ = acquire_step::wait_change; // a remembered index makes the first wait return at once
        remembered_ = false;
        return;
    }
    if (entry_->session) // ours, but not held through us: unlock and lock again for a fresh ModifyIndex
        ops_ = {txn_op::check_index(k, entry_->modify_index), txn_op::unlock(k, session_, params_.value, params_.flags),
                txn_op::lock(k, session_, params_.value, params_.flags)};
    else
        ops_ = {txn_op::check_index(k, entry_->modify_index), txn_op::lock(k, session_, params_.value, params_.flags)};
    step_ = acquire_step::write;
}

void lock_acquisition::fail(error_code ec)
{
    error_ = ec;
    step_ = acquire_step::failed;
}

void lock_acquisition::back_off(acquire_step then)
{
    after_backoff_ = then;
    step_ = acquire_step::backoff;
}

void lock_acquisition::count_error(error_code ec, acquire_step after_backoff)
{
    ++errors_;
    error_ = ec;
    if (params_.max_consecutive_errors != 0 && errors_ >= params_.max_consecutive_errors) {
        fail(ec);
        return;
    }
    lock_delay_backoff_ = false;
    back_off(after_backoff);
}

milliseconds lock_acquisition::delay(double unit_random) const noexcept
{
    if (lock_delay_backoff_)
        return jittered(doubled(milliseconds(25), lock_delay_tries_ - 1, lock_delay_max_), unit_random);
    return jittered(doubled(retry_initial_, errors_ == 0 ? 0 : errors_ - 1, retry_max_), unit_random);
}

void lock_acquisition::on_write(error_code ec, const consul::txn_result& result)
{
    if (ec) {
        if (ec == errc::indeterminate_write || ec == errc::request_timeout) {
            resolving_ = true; // applied or not: a consistent read tells
            unresolved_ = true;
            ++errors_;
            if (params_.max_consecutive_errors != 0 && errors_ >= params_.max_consecutive_errors + 2)
                fail(ec); // never reached in practice: reads resolve it first
            else
                step_ = acquire_step::read;
            return;
        }
        if (is_retryable(ec)) {
            known_ = false;
            count_error(ec, acquire_step::read);
            return;
        }
        fail(ec);
        return;
    }
    if (result.committed) {
        if (result.results.empty() || !result.results.back().session || *result.results.back().session != session_) {
            fail(make_error_code(errc::bad_response));
            return;
        }
        entry_ = result.results.back();
        known_ = true;
        index_ = entry_->modify_index;
        token_ = entry_->modify_index;
        errors_ = 0;
        step_ = acquire_step::held;
        return;
    }
    if (result.errors.empty()) {
        fail(make_error_code(errc::bad_response));
        return;
    }
    // Which operation failed: a guard (the key is not as we assumed) or the lock itself.
    const bool lock_failed = result.errors.front().op_index + 1 == ops_.size();
    const auto cause = classify_rollback(result.errors.front().what);
    if (lock_failed && cause == rollback_cause::lock_delay) {
        if (params_.try_once) {
            step_ = acquire_step::not_acquired;
            return;
        }
        ++lock_delay_tries_;
        lock_delay_backoff_ = true;
        back_off(acquire_step::write);
        return;
    }
    known_ = false;
    if (lock_failed && cause == rollback_cause::already_held) { // another session holds it: learn which, then wait
        step_ = params_.try_once ? acquire_step::not_acquired : acquire_step::read;
        return;
    }
    if (lock_failed && cause == rollback_cause::invalid_session) { // "invalid session": ours may be gone. Ask at once, the
        // second time after a backoff (a session Consul renews yet refuses must not spin).
        const bool first = !session_refused_;
        session_refused_ = true;
        if (first) {
            ++errors_;
            step_ = acquire_step::renew_session;
        } else {
            count_error(make_error_code(errc::session_invalidated), acquire_step::renew_session);
        }
        return;
    }
    // A guard failed (the key changed since we saw it): read it again. Counted, so that a rollback
    // we do not understand cannot loop forever.
    ++errors_;
    if (params_.max_consecutive_errors != 0 && errors_ >= params_.max_consecutive_errors * 4) {
        fail(make_error_code(errc::bad_response));
        return;
    }
    step_ = acquire_step::read;
}

void lock_acquisition::on_read(error_code ec, const std::optional<consul::kv_entry>& entry, std::uint64_t index)
{
    if (ec) {
        if (is_retryable(ec))
            count_error(ec, acquire_step::read);
        else
            fail(ec);
        return;
    }
    known_ = true;
    remembered_ = false;
    entry_ = entry;
    index_ = index;
    if (resolving_) {
        resolving_ = false;
        unresolved_ = false; // the write's fate shows in the key (or it never reached Consul)
        if (entry && entry->session && *entry->session == session_ && entry->flags == params_.flags) {
            token_ = entry->modify_index;
            step_ = acquire_step::held;
            return;
        }
    }
    decide();
}

void lock_acquisition::on_change(error_code ec, const std::optional<consul::kv_entry>& entry, std::uint64_t index)
{
    if (ec) {
        if (!is_retryable(ec)) {
            fail(ec);
            return;
        }
        // The watch retries by itself; give up only after many failures in a row.
        ++errors_;
        error_ = ec;
        if (params_.max_consecutive_errors != 0 && errors_ >= params_.max_consecutive_errors)
            fail(ec);
        else
            step_ = acquire_step::wait_change;
        return;
    }
    errors_ = 0;
    known_ = true;
    entry_ = entry;
    index_ = index;
    decide();
}

void lock_acquisition::on_backoff_done()
{
    if (lock_delay_backoff_) {
        lock_delay_backoff_ = false;
        decide();
        return;
    }
    step_ = after_backoff_;
}

void lock_acquisition::on_session(error_code ec, const consul::session_id& session)
{
    if (ec) {
        fail(ec);
        return;
    }
    session_ = session;
    known_ = false; // start over from a fresh read
    step_ = acquire_step::read;
}

} // namespace colock::detail
