#include "tcp_proxy.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <atomic>
#include <list>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

namespace colock::test {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct tcp_proxy::impl {
    struct link : std::enable_shared_from_this<link> {
        link(asio::io_context& ioc, impl& o) : client(ioc), server(ioc), reply_timer(ioc), owner(o) {}
        tcp::socket client;
        tcp::socket server;
        asio::steady_timer reply_timer; // holds a reply chunk in mode::delay_replies
        impl& owner;
        std::array<char, 16384> up{};
        std::array<char, 16384> down{};

        // Reads from `from` and forwards to `to`, one chunk at a time; `replies` is the agent-to-client direction.
        void pump(tcp::socket& from, tcp::socket& to, std::array<char, 16384>& buf, bool replies)
        {
            auto self = shared_from_this();
            auto on_read = [this, self, &from, &to, &buf, replies](boost::system::error_code ec, std::size_t n) {
                if (ec) {
                    close();
                    return;
                }
                const mode m = owner.current.load();
                if (m == mode::blackhole || (replies && m == mode::drop_replies)) {
                    pump(from, to, buf, replies); // swallow the bytes silently
                    return;
                }
                if (replies && m == mode::delay_replies) {
                    reply_timer.expires_after(std::chrono::milliseconds(owner.reply_delay_ms.load()));
                    reply_timer.async_wait([this, self, &from, &to, &buf, n](boost::system::error_code) {
                        forward(from, to, buf, n, true);
                    });
                    return;
                }
                forward(from, to, buf, n, replies);
            };
            from.async_read_some(asio::buffer(buf), on_read);
        }

        void forward(tcp::socket& from, tcp::socket& to, std::array<char, 16384>& buf, std::size_t n, bool replies)
        {
            auto self = shared_from_this();
            asio::async_write(to, asio::buffer(buf.data(), n),
                              [this, self, &from, &to, &buf, n, replies](boost::system::error_code wec, std::size_t) {
                                  if (wec) {
                                      close();
                                      return;
                                  }
                                  if (!replies)
                                      owner.note_request(std::string_view(buf.data(), n));
                                  pump(from, to, buf, replies);
                              });
        }

        void close()
        {
            boost::system::error_code ignored;
            client.close(ignored);
            server.close(ignored);
            reply_timer.cancel();
        }

        void reset()
        {
            boost::system::error_code ignored;
            client.set_option(asio::socket_base::linger(true, 0), ignored);
            server.set_option(asio::socket_base::linger(true, 0), ignored);
            close();
        }
    };

    impl(std::string host, std::uint16_t port)
        : acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
          target(asio::ip::make_address(host), port)
    {
        accept();
        thread = std::thread([this] { ioc.run(); });
    }

    ~impl()
    {
        asio::post(ioc, [this] {
            boost::system::error_code ignored;
            acceptor.close(ignored);
            for (auto& w : links)
                if (auto l = w.lock())
                    l->close();
        });
        ioc.stop();
        thread.join();
    }

    void note_request(std::string_view chunk)
    {
        std::lock_guard<std::mutex> guard(requests_mutex);
        request_chunks.emplace_back(chunk.substr(0, 8192));
    }

    void accept()
    {
        auto l = std::make_shared<link>(ioc, *this);
        acceptor.async_accept(l->client, [this, l](boost::system::error_code ec) {
            if (ec)
                return;
            ++accepted;
            links.push_back(l);
            l->server.async_connect(target, [l](boost::system::error_code cec) {
                if (cec) {
                    l->close();
                    return;
                }
                l->pump(l->client, l->server, l->up, false);
                l->pump(l->server, l->client, l->down, true);
            });
            accept();
        });
    }

    asio::io_context ioc;
    tcp::acceptor acceptor;
    tcp::endpoint target;
    std::atomic<mode> current{mode::pass};
    std::atomic<std::size_t> accepted{0};
    std::atomic<long long> reply_delay_ms{300};
    mutable std::mutex requests_mutex;
    std::vector<std::string> request_chunks; // the first bytes of each chunk forwarded to the agent
    std::list<std::weak_ptr<link>> links;
    std::thread thread;
};

tcp_proxy::tcp_proxy(std::string target_host, std::uint16_t target_port)
    : impl_(std::make_unique<impl>(std::move(target_host), target_port))
{
}

tcp_proxy::~tcp_proxy() = default;

std::uint16_t tcp_proxy::port() const noexcept { return impl_->acceptor.local_endpoint().port(); }

void tcp_proxy::set_mode(mode m) { impl_->current = m; }

tcp_proxy::mode tcp_proxy::current_mode() const noexcept { return impl_->current.load(); }

void tcp_proxy::set_reply_delay(std::chrono::milliseconds d) { impl_->reply_delay_ms = d.count(); }

void tcp_proxy::reset_all()
{
    std::atomic<bool> done{false};
    asio::post(impl_->ioc, [this, &done] {
        for (auto& w : impl_->links)
            if (auto l = w.lock())
                l->reset();
        impl_->links.clear();
        done = true;
    });
    while (!done)
        std::this_thread::yield();
}

std::size_t tcp_proxy::connections_accepted() const { return impl_->accepted; }

std::size_t tcp_proxy::requests_forwarded(std::string_view start, std::string_view containing) const
{
    std::lock_guard<std::mutex> guard(impl_->requests_mutex);
    std::size_t n = 0;
    for (const auto& r : impl_->request_chunks)
        if (std::string_view(r).starts_with(start) && r.find(containing) != std::string::npos)
            ++n;
    return n;
}

} // namespace colock::test
