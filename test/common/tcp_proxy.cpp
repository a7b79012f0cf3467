#include "tcp_proxy.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <atomic>
#include <list>
#include <thread>

namespace colock::test {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct tcp_proxy::impl {
    struct link : std::enable_shared_from_this<link> {
        link(asio::io_context& ioc, impl& o) : client(ioc), server(ioc), owner(o) {}
        tcp::socket client;
        tcp::socket server;
        impl& owner;
        std::array<char, 16384> up{};
        std::array<char, 16384> down{};

        void pump(tcp::socket& from, tcp::socket& to, std::array<char, 16384>& buf)
        {
            auto self = shared_from_this();
            from.async_read_some(asio::buffer(buf), [this, self, &from, &to, &buf](boost::system::error_code ec, std::size_t n) {
                if (ec) {
                    close();
                    return;
                }
                if (owner.current.load() == mode::blackhole) {
                    pump(from, to, buf); // swallow the bytes silently
                    return;
                }
                asio::async_write(to, asio::buffer(buf.data(), n), [this, self, &from, &to, &buf](boost::system::error_code wec, std::size_t) {
                    if (wec) {
                        close();
                        return;
                    }
                    pump(from, to, buf);
                });
            });
        }

        void close()
        {
            boost::system::error_code ignored;
            client.close(ignored);
            server.close(ignored);
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
                l->pump(l->client, l->server, l->up);
                l->pump(l->server, l->client, l->down);
            });
            accept();
        });
    }

    asio::io_context ioc;
    tcp::acceptor acceptor;
    tcp::endpoint target;
    std::atomic<mode> current{mode::pass};
    std::atomic<std::size_t> accepted{0};
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

} // namespace colock::test
