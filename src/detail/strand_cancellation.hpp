#ifndef COLOCK_SRC_DETAIL_STRAND_CANCELLATION_HPP
#define COLOCK_SRC_DETAIL_STRAND_CANCELLATION_HPP

// A caller's cancellation slot is emitted on the caller's thread, but the operation it cancels lives on
// the client's strand. cancellable_on() puts a strand-side signal between the two: the caller's slot
// only posts to the strand, where the operation's own slot is emitted.

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/post.hpp>

#include <memory>
#include <utility>

namespace colock::detail {

/// Returns `h` rebound to a cancellation slot that is emitted on `strand` whenever the caller's slot of
/// `h` is emitted (from any thread). The handler keeps its associated executor (default
/// `default_ex`); on completion it disconnects the caller's slot, then runs `h`.
template <class... Args>
boost::asio::any_completion_handler<void(Args...)> cancellable_on(const boost::asio::any_io_executor& strand,
                                                                  const boost::asio::any_io_executor& default_ex,
                                                                  boost::asio::any_completion_handler<void(Args...)> h)
{
    namespace asio = boost::asio;
    auto user_slot = asio::get_associated_cancellation_slot(h);
    if (!user_slot.is_connected())
        return h;
    auto ex = asio::get_associated_executor(h, default_ex);
    // Owned by the returned handler: it lives as long as the operation that waits on its slot.
    auto signal = std::make_shared<asio::cancellation_signal>();
    user_slot.assign([strand, weak = std::weak_ptr<asio::cancellation_signal>(signal)](asio::cancellation_type type) {
        if (type == asio::cancellation_type::none)
            return;
        asio::post(strand, [weak, type] {
            if (auto s = weak.lock())
                s->emit(type);
        });
    });
    auto slot = signal->slot();
    auto done = [signal, user_slot, h = std::move(h)](Args... args) mutable {
        auto s = user_slot;
        if (s.is_connected())
            s.clear();
        std::move(h)(std::move(args)...);
    };
    return asio::bind_cancellation_slot(slot, asio::bind_executor(ex, std::move(done)));
}

} // namespace colock::detail

#endif
