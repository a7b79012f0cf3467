#include "consul_agent.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <condition_variable>
#include <exception>
#include <functional>
#include <utility>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace colock::test {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto default_request_timeout = 10s;
constexpr auto readiness_deadline = 30s;
constexpr auto readiness_poll = 20ms;
constexpr auto stop_grace = 10s;
constexpr int launch_attempts = 3; // a port picked free can be taken before the agent binds it

// ---- small helpers ---------------------------------------------------------------------------------------

const char* env(const char* name) {
    const char* v = std::getenv(name);
    return v;
}

// CI is "set" when it has a value other than empty, 0 or false (GitHub, GitLab and most runners use "true").
bool in_ci() {
    const char* v = env("CI");
    if (v == nullptr) {
        return false;
    }
    std::string s(v);
    return !(s.empty() || s == "0" || s == "false" || s == "FALSE" || s == "False");
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

std::string trim(std::string s) {
    auto not_space = [](unsigned char c) { return !std::isspace(c); };
    s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
    s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
    return s;
}

std::string shell_quote(std::string_view s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') {
            out += "'\\''";
        } else {
            out += c;
        }
    }
    out += '\'';
    return out;
}

std::string seconds_text(clock_type::duration d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f s", std::chrono::duration<double>(d).count());
    return buf;
}

// Percent-encodes everything but RFC 3986 unreserved characters and '/'.
std::string encode_path(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

// Runs a shell command; returns its stdout and exit status (stderr passes through).
std::pair<std::string, int> run_capture(const std::string& command) {
    std::FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) {
        return {{}, -1};
    }
    std::string out;
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) {
        out.append(buf, n);
    }
    int status = ::pclose(pipe);
    int code = status == -1 ? -1 : (WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return {out, code};
}

std::string first_line(const std::string& s) {
    return trim(s.substr(0, s.find('\n')));
}

std::string read_tail(const std::string& path, std::size_t max_lines) {
    std::ifstream in(path);
    if (!in) {
        return "(no agent log at " + path + ")";
    }
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(in, line)) {
        lines.push_back(std::move(line));
        if (lines.size() > 4 * max_lines + 64) {
            lines.erase(lines.begin(), lines.end() - static_cast<std::ptrdiff_t>(max_lines));
        }
    }
    std::size_t from = lines.size() > max_lines ? lines.size() - max_lines : 0;
    std::string out;
    for (std::size_t i = from; i < lines.size(); ++i) {
        out += "    | " + lines[i] + "\n";
    }
    return out.empty() ? "    | (agent log is empty)\n" : out;
}

// Thrown when no consul binary can be had: a skip outside CI, a failure in CI.
struct binary_unavailable : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// ---- synchronous HTTP over Beast (async ops on a private io_context, so the stream's deadline applies) ------

struct exchange_spec {
    std::string host;
    std::uint16_t port = 0;
    http::request<http::string_body> request;
    std::chrono::milliseconds timeout{};
};

asio::awaitable<void> exchange(const exchange_spec& spec, http_reply& reply) {
    auto executor = co_await asio::this_coro::executor;
    beast::tcp_stream stream(executor);
    tcp::resolver resolver(executor);
    stream.expires_after(spec.timeout);
    auto endpoints = co_await resolver.async_resolve(spec.host, std::to_string(spec.port), asio::use_awaitable);
    co_await stream.async_connect(endpoints, asio::use_awaitable);
    co_await http::async_write(stream, spec.request, asio::use_awaitable);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(std::uint64_t{64} << 20);
    co_await http::async_read(stream, buffer, parser, asio::use_awaitable);
    auto& response = parser.get();
    reply.status = response.result_int();
    reply.body = std::move(response.body());
    for (const auto& field : response) {
        auto name = lower(field.name_string());
        auto [it, inserted] = reply.headers.try_emplace(name, field.value());
        if (!inserted) {
            it->second += ", ";
            it->second += field.value();
        }
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

http_reply http_request(const std::string& host, std::uint16_t port, std::string_view method,
                        std::string_view target, std::string_view body,
                        const std::map<std::string, std::string>& headers, const std::string& token,
                        std::chrono::milliseconds timeout) {
    exchange_spec spec;
    spec.host = host;
    spec.port = port;
    spec.timeout = timeout;
    auto& req = spec.request;
    auto verb = http::string_to_verb(method);
    if (verb == http::verb::unknown) {
        req.method_string(method);
    } else {
        req.method(verb);
    }
    req.target(target);
    req.version(11);
    req.set(http::field::host, host + ":" + std::to_string(port));
    req.set(http::field::user_agent, "colock-test-harness");
    req.keep_alive(false);
    bool has_token = false;
    for (const auto& [name, value] : headers) {
        req.set(name, value);
        has_token = has_token || lower(name) == "x-consul-token";
    }
    if (!token.empty() && !has_token) {
        req.set("X-Consul-Token", token);
    }
    req.body() = std::string(body);
    if (!body.empty() || verb == http::verb::put || verb == http::verb::post) {
        req.prepare_payload();
    }

    asio::io_context ioc;
    http_reply reply;
    std::exception_ptr error;
    bool done = false;
    asio::co_spawn(ioc, exchange(spec, reply), [&](std::exception_ptr e) {
        error = e;
        done = true;
    });
    // The stream's deadline covers connect, write and read; run_for is a backstop for name resolution.
    ioc.run_for(timeout + 2s);
    std::string what = std::string(method) + " http://" + host + ":" + std::to_string(port) + std::string(target);
    if (!done) {
        throw std::runtime_error("consul harness: " + what + ": no answer within " + seconds_text(timeout));
    }
    if (error) {
        try {
            std::rethrow_exception(error);
        } catch (const boost::system::system_error& e) {
            throw std::runtime_error("consul harness: " + what + ": " + e.code().message());
        } catch (const std::exception& e) {
            throw std::runtime_error("consul harness: " + what + ": " + e.what());
        }
    }
    return reply;
}

json::value parse_json(const http_reply& reply, std::string_view what) {
    boost::system::error_code ec;
    auto v = json::parse(reply.body, ec);
    if (ec) {
        throw std::runtime_error("consul harness: " + std::string(what) + ": bad JSON (" + ec.message() +
                                 "): " + reply.body.substr(0, 300));
    }
    return v;
}

// ---- ports, temp dir, process ------------------------------------------------------------------------------

// Binds a socket of the given type to 127.0.0.1:port (0 = any); returns the fd and the bound port, or -1.
int bind_loopback(int type, std::uint16_t port, std::uint16_t& bound) {
    int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        ::close(fd);
        return -1;
    }
    bound = ntohs(addr.sin_port);
    return fd;
}

struct agent_ports {
    std::uint16_t http = 0, serf_lan = 0, serf_wan = 0, server = 0, https = 0;
};

// Four distinct free loopback ports; the serf ports are free for both TCP and UDP (gossip uses both).
agent_ports pick_ports() {
    std::vector<int> held;
    auto pick = [&](bool with_udp) -> std::uint16_t {
        for (int attempt = 0; attempt < 50; ++attempt) {
            std::uint16_t port = 0;
            int tcp_fd = bind_loopback(SOCK_STREAM, 0, port);
            if (tcp_fd < 0) {
                continue;
            }
            held.push_back(tcp_fd);
            if (!with_udp) {
                return port;
            }
            std::uint16_t same = 0;
            int udp_fd = bind_loopback(SOCK_DGRAM, port, same);
            if (udp_fd >= 0) {
                held.push_back(udp_fd);
                return port;
            }
        }
        for (int fd : held) {
            ::close(fd);
        }
        throw std::runtime_error("consul harness: could not find free loopback ports");
    };
    agent_ports p;
    p.http = pick(false);
    p.serf_lan = pick(true);
    p.serf_wan = pick(true);
    p.server = pick(false);
    p.https = pick(false);
    for (int fd : held) {
        ::close(fd);
    }
    return p;
}

std::string random_hex(std::size_t digits) {
    static constexpr char hex[] = "0123456789abcdef";
    std::random_device rd;
    std::string out;
    for (std::size_t i = 0; i < digits; ++i) {
        out += hex[rd() & 15];
    }
    return out;
}

bool process_gone(pid_t pid) {
    return ::kill(pid, 0) != 0 && errno == ESRCH;
}

// Runs f on a thread that lives as long as the process: the main thread, or else one parked helper thread that
// is never joined. (PR_SET_PDEATHSIG is tied to the thread that forked, not to the process: an agent forked from a
// short-lived thread would be killed when that thread ends.)
void run_on_process_lifetime_thread(const std::function<void()>& f) {
    if (::syscall(SYS_gettid) == ::getpid()) {
        f();
        return;
    }
    struct keeper {
        std::mutex m;
        std::condition_variable cv;
        const std::function<void()>* job = nullptr;
        std::exception_ptr error;
        bool finished = false;
    };
    // Never destroyed: the parked thread waits on it until the process ends.
    static keeper* k = [] {
        auto* state = new keeper;
        std::thread([state] {
            std::unique_lock lock(state->m);
            for (;;) {
                state->cv.wait(lock, [state] { return state->job != nullptr; });
                try {
                    (*state->job)();
                } catch (...) {
                    state->error = std::current_exception();
                }
                state->job = nullptr;
                state->finished = true;
                state->cv.notify_all();
            }
        }).detach();
        return state;
    }();
    static std::mutex one_job_at_a_time;
    std::lock_guard serial(one_job_at_a_time);
    std::unique_lock lock(k->m);
    k->job = &f;
    k->finished = false;
    k->error = nullptr;
    k->cv.notify_all();
    k->cv.wait(lock, [] { return k->finished; });
    if (auto e = std::exchange(k->error, nullptr)) {
        std::rethrow_exception(e);
    }
}

// ---- the process-wide instance ------------------------------------------------------------------------------

std::mutex g_mutex;
std::unique_ptr<consul_agent> g_agent; // destroyed at exit: ~consul_agent stops the agent
std::exception_ptr g_failure;          // a failed start is not retried
std::atomic<unsigned> g_prefix_counter{0};
std::optional<tls_files> g_https; // set by enable_https() before the agent starts

} // namespace

// ---- http_reply ---------------------------------------------------------------------------------------------

std::string http_reply::header(const std::string& lower_case_name) const {
    auto it = headers.find(lower_case_name);
    return it == headers.end() ? std::string() : it->second;
}

// ---- consul_agent: instance ---------------------------------------------------------------------------------

consul_agent& consul_agent::instance() {
    std::string skip_reason;
    {
        std::lock_guard lock(g_mutex);
        if (g_agent) {
            return *g_agent;
        }
        if (g_failure) {
            std::rethrow_exception(g_failure);
        }
        std::unique_ptr<consul_agent> agent(new consul_agent());
        try {
            agent->start();
            g_agent = std::move(agent);
            return *g_agent;
        } catch (const binary_unavailable& e) {
            agent.reset();
            if (in_ci()) {
                std::string msg = std::string("consul harness: FAILED: ") + e.what() +
                                  "\nconsul harness: CI is set, so a missing Consul is a failure, not a skip "
                                  "(CONSUL.md 8.1).";
                std::cerr << msg << std::endl;
                g_failure = std::make_exception_ptr(std::runtime_error(msg));
                throw std::runtime_error(msg);
            }
            skip_reason = e.what();
        } catch (...) {
            agent.reset(); // stops whatever was started
            g_failure = std::current_exception();
            throw;
        }
    }
    std::cout << "SKIP: " << skip_reason << std::endl;
    std::cerr << std::flush;
    std::exit(77);
}

consul_agent::~consul_agent() {
    stop();
}

const std::string& consul_agent::host() const noexcept { return host_; }
std::uint16_t consul_agent::http_port() const noexcept { return http_port_; }
std::uint16_t consul_agent::https_port() const noexcept { return https_port_; }

void consul_agent::enable_https(tls_files files) {
    std::lock_guard lock(g_mutex);
    if (g_agent) {
        throw std::logic_error("consul harness: enable_https() must come before the agent starts");
    }
    g_https = std::move(files);
}
std::string consul_agent::http_address() const { return host_ + ":" + std::to_string(http_port_); }
const std::string& consul_agent::version() const noexcept { return version_; }
bool consul_agent::started_by_harness() const noexcept { return !external_; }
pid_t consul_agent::pid() const noexcept { return pid_; }
const std::string& consul_agent::node_name() const noexcept { return node_name_; }
const std::string& consul_agent::binary_path() const noexcept { return binary_; }
const std::string& consul_agent::temp_dir() const noexcept { return temp_dir_; }
bool consul_agent::stopped() const noexcept { return stopped_; }

std::string consul_agent::log_path() const {
    return temp_dir_.empty() ? std::string() : temp_dir_ + "/agent.log";
}

std::string consul_agent::log_tail(std::size_t max_lines) const {
    return temp_dir_.empty() ? std::string() : read_tail(log_path(), max_lines);
}

// ---- consul_agent: start --------------------------------------------------------------------------------------

void consul_agent::start() {
    if (const char* addr = env("CONSUL_HTTP_ADDR"); addr != nullptr && *addr != '\0') {
        start_external(addr);
        return;
    }

    // The binary: $COLOCK_CONSUL, else scripts/consul (which may build the pinned release, minutes once).
    if (const char* path = env("COLOCK_CONSUL"); path != nullptr) {
        binary_ = path;
        if (binary_.empty()) {
            throw binary_unavailable("COLOCK_CONSUL is set but empty (scripts/setup could not obtain Consul; "
                                     "see its output)");
        }
        if (::access(binary_.c_str(), X_OK) != 0) {
            throw binary_unavailable("COLOCK_CONSUL='" + binary_ + "' is not an executable file (" +
                                     std::strerror(errno) + ")");
        }
    } else {
#ifdef COLOCK_CONSUL_SCRIPT
        std::string script = COLOCK_CONSUL_SCRIPT;
#else
        std::string script;
#endif
        if (script.empty() || ::access(script.c_str(), X_OK) != 0) {
            throw binary_unavailable("COLOCK_CONSUL is not set and scripts/consul ('" + script +
                                     "') is not available");
        }
        std::cout << "consul harness: COLOCK_CONSUL is not set; asking " << script << std::endl;
        auto [out, code] = run_capture(shell_quote(script));
        binary_ = first_line(out);
        if (code != 0 || binary_.empty()) {
            throw binary_unavailable(script + " exited with status " + std::to_string(code) +
                                     " without printing a consul path (its stderr above says why)");
        }
        if (::access(binary_.c_str(), X_OK) != 0) {
            throw binary_unavailable(script + " printed '" + binary_ + "', which is not executable");
        }
    }

    auto [version_out, version_code] = run_capture(shell_quote(binary_) + " version");
    version_ = first_line(version_out);
    if (version_code != 0 || version_.rfind("Consul v", 0) != 0) {
        throw binary_unavailable("'" + binary_ + " version' failed (status " + std::to_string(version_code) +
                                 ", output '" + version_ + "')");
    }

    remove_stale_temp_dirs();
    node_name_ = "colock-" + std::to_string(::getpid()) + "-" + random_hex(6);
    std::string templ = temp_root() + "/" + std::string(temp_dir_prefix) + std::to_string(::getpid()) + "-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) {
        throw std::runtime_error("consul harness: mkdtemp(" + templ + ") failed: " + std::strerror(errno));
    }
    temp_dir_ = buf.data();

    for (int attempt = 1;; ++attempt) {
        try {
            launch_once();
            break;
        } catch (const std::exception& e) {
            std::string tail = log_tail(400);
            bool port_clash = pid_ == 0 && tail.find("address already in use") != std::string::npos;
            if (!port_clash || attempt == launch_attempts) {
                throw;
            }
            std::cout << "consul harness: a port was taken before the agent bound it; retrying with new ports"
                      << std::endl;
        }
    }
}

void consul_agent::launch_once() {
    auto ports = pick_ports();
    http_port_ = ports.http;
    std::string log = log_path();

    std::vector<std::string> args = {
        binary_,
        "agent",
        "-dev",
        "-bind", "127.0.0.1",
        "-client", "127.0.0.1",
        "-node", node_name_,
        "-http-port", std::to_string(ports.http),
        "-serf-lan-port", std::to_string(ports.serf_lan),
        "-serf-wan-port", std::to_string(ports.serf_wan),
        "-server-port", std::to_string(ports.server),
        "-dns-port", "-1",
        "-grpc-port", "-1",
        "-hcl", "ports { grpc_tls = -1 }",
        "-hcl", "session_ttl_min = \"1s\"",
        "-hcl", "disable_update_check = true",
        "-hcl", "performance { rpc_hold_timeout = \"1s\" }",
        "-default-query-time", "10s",
        "-max-query-time", "60s",
    };
    https_port_ = 0;
    if (g_https) {
        https_port_ = ports.https;
        args.insert(args.end(), {"-https-port", std::to_string(ports.https), "-hcl",
                                 "tls { defaults { ca_file = \"" + g_https->ca_file + "\" cert_file = \"" +
                                     g_https->cert_file + "\" key_file = \"" + g_https->key_file +
                                     "\" verify_incoming = false } }"});
    }
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);

    // The child reports an exec failure's errno through a close-on-exec pipe; EOF means exec succeeded.
    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0) {
        throw std::runtime_error(std::string("consul harness: pipe2 failed: ") + std::strerror(errno));
    }
    const pid_t parent = ::getpid();
    auto started = clock_type::now();
    pid_t child = -1;
    int child_errno = 0;
    ssize_t n = 0;
    auto spawn = [&] {
        child = ::fork();
        if (child < 0) {
            int err = errno;
            ::close(report[0]);
            ::close(report[1]);
            throw std::runtime_error(std::string("consul harness: fork failed: ") + std::strerror(err));
        }
        if (child == 0) {
            // Only async-signal-safe calls from here to execve.
            auto fail = [&](int err) {
                [[maybe_unused]] auto written = ::write(report[1], &err, sizeof err);
                ::_exit(127);
            };
            // Die with the test process, even when it is SIGKILLed; close the race with an early parent death.
            if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
                fail(errno);
            }
            if (::getppid() != parent) {
                ::_exit(127);
            }
            int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
            int in = ::open("/dev/null", O_RDONLY);
            if (out < 0 || in < 0) {
                fail(errno);
            }
            if (::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(out, 2) < 0) {
                fail(errno);
            }
            // Keep the report pipe (close-on-exec), close every other inherited descriptor.
            for (int fd = 3; fd < 1024; ++fd) {
                if (fd != report[1]) {
                    ::close(fd);
                }
            }
            ::syscall(SYS_close_range, 1024U, ~0U, 0U); // ignored where close_range is missing
            struct sigaction dfl {};
            dfl.sa_handler = SIG_DFL;
            for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD}) {
                ::sigaction(sig, &dfl, nullptr);
            }
            sigset_t none;
            sigemptyset(&none);
            ::sigprocmask(SIG_SETMASK, &none, nullptr);
            ::execve(argv[0], argv.data(), environ);
            fail(errno);
        }
        ::close(report[1]);
        do {
            n = ::read(report[0], &child_errno, sizeof child_errno);
        } while (n < 0 && errno == EINTR);
    };
    // PR_SET_PDEATHSIG fires when the forking *thread* ends, so fork on a thread that lives as long as the process.
    run_on_process_lifetime_thread(spawn);
    ::close(report[0]);
    pid_ = child;
    if (n > 0) {
        kill_child();
        throw std::runtime_error("consul harness: could not start '" + binary_ + "': " + std::strerror(child_errno));
    }

    wait_ready(started);
    std::cout << "consul harness: " << version_ << " at " << http_address() << " (pid " << pid_ << "), ready in "
              << seconds_text(clock_type::now() - started) << "; node " << node_name_ << ", binary " << binary_
              << ", log " << log << std::endl;
#ifdef COLOCK_CONSUL_VERSION
    if (version_ != "Consul v" COLOCK_CONSUL_VERSION) {
        std::cout << "consul harness: note: the pinned release is v" COLOCK_CONSUL_VERSION << std::endl;
    }
#endif
}

void consul_agent::start_external(const std::string& addr) {
    external_ = true;
    std::string rest = trim(addr);
    if (rest.rfind("https://", 0) == 0) {
        throw std::runtime_error("consul harness: CONSUL_HTTP_ADDR='" + addr + "': https is not supported");
    }
    if (rest.rfind("http://", 0) == 0) {
        rest.erase(0, 7);
    }
    while (!rest.empty() && rest.back() == '/') {
        rest.pop_back();
    }
    std::string port = "8500";
    if (!rest.empty() && rest.front() == '[') { // [::1]:8500
        auto close = rest.find(']');
        if (close == std::string::npos) {
            throw std::runtime_error("consul harness: CONSUL_HTTP_ADDR='" + addr + "' is not host:port");
        }
        host_ = rest.substr(1, close - 1);
        if (close + 1 < rest.size() && rest[close + 1] == ':') {
            port = rest.substr(close + 2);
        }
    } else if (auto colon = rest.rfind(':'); colon != std::string::npos) {
        host_ = rest.substr(0, colon);
        port = rest.substr(colon + 1);
    } else {
        host_ = rest;
    }
    char* end = nullptr;
    unsigned long p = std::strtoul(port.c_str(), &end, 10);
    if (host_.empty() || port.empty() || *end != '\0' || p == 0 || p > 65535) {
        throw std::runtime_error("consul harness: CONSUL_HTTP_ADDR='" + addr + "' is not host:port");
    }
    http_port_ = static_cast<std::uint16_t>(p);
    if (const char* token = env("CONSUL_HTTP_TOKEN"); token != nullptr) {
        token_ = token;
    }

    auto started = clock_type::now();
    wait_ready(started);
    std::cout << "consul harness: using the existing agent at " << http_address() << " (CONSUL_HTTP_ADDR), "
              << version_ << ", node " << node_name_ << std::endl;
}

// Readiness as in Consul's sdk/testutil (CONSUL.md 8.2), polled every 20 ms, never a fixed sleep.
void consul_agent::wait_ready(clock_type::time_point started) {
    const auto deadline = started + readiness_deadline;
    std::string node_target = "/v1/health/node/" + encode_path(node_name_);
    static constexpr const char* stage_names[] = {
        "/v1/agent/self to answer 200 with Config.Version and Config.NodeName",
        "/v1/status/leader to name a leader",
        "/v1/catalog/nodes to answer 200 with X-Consul-KnownLeader: true and X-Consul-Index >= 2",
        "the serfHealth check of node to be passing",
    };
    // Stage 0 (an existing agent only) learns the version and node name; the harness's own agent starts at 1.
    int stage = external_ ? 0 : 1;
    std::string last;
    while (stage < 4) {
        if (pid_ > 0) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = 0;
                std::string how = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                                    : "was killed by signal " + std::to_string(WTERMSIG(status));
                throw std::runtime_error("consul harness: the agent " + how + " after " +
                                         seconds_text(clock_type::now() - started) + ", before it was ready; " +
                                         log_path() + " ends with:\n" + log_tail());
            }
        }
        auto now = clock_type::now();
        if (now >= deadline) {
            std::string msg = "consul harness: the agent at " + http_address() + " was not ready after " +
                              seconds_text(now - started) + ": still waiting for " + stage_names[stage] +
                              (last.empty() ? "" : " (last: " + last + ")");
            if (pid_ > 0) {
                msg += "; " + log_path() + " ends with:\n" + log_tail();
                kill_child();
            }
            throw std::runtime_error(msg);
        }
        auto per_try = std::min<clock_type::duration>(2s, deadline - now);
        bool advanced = false;
        try {
            auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(per_try) + 1ms;
            if (stage == 0) {
                auto r = request("GET", "/v1/agent/self", {}, {}, timeout);
                last = "status " + std::to_string(r.status) + ", body " + trim(r.body).substr(0, 200);
                if (r.status == 200) {
                    auto v = parse_json(r, "/v1/agent/self");
                    const auto* config = v.is_object() ? v.as_object().if_contains("Config") : nullptr;
                    const auto* version =
                        config && config->is_object() ? config->as_object().if_contains("Version") : nullptr;
                    const auto* node =
                        config && config->is_object() ? config->as_object().if_contains("NodeName") : nullptr;
                    if (version && node && version->is_string() && node->is_string()) {
                        version_ = "Consul v" + std::string(version->as_string());
                        node_name_ = std::string(node->as_string());
                        node_target = "/v1/health/node/" + encode_path(node_name_);
                        advanced = true;
                    }
                }
            } else if (stage == 1) {
                auto r = request("GET", "/v1/status/leader", {}, {}, timeout);
                std::string leader = r.status == 200 ? trim(r.body) : std::string();
                if (r.status == 200 && leader != "\"\"" && leader.size() > 2) {
                    advanced = true;
                } else {
                    last = "status " + std::to_string(r.status) + ", body " + trim(r.body).substr(0, 200);
                }
            } else if (stage == 2) {
                auto r = request("GET", "/v1/catalog/nodes", {}, {}, timeout);
                auto index = std::strtoull(r.header("x-consul-index").c_str(), nullptr, 10);
                if (r.status == 200 && r.header("x-consul-knownleader") == "true" && index >= 2) {
                    advanced = true;
                } else {
                    last = "status " + std::to_string(r.status) + ", known leader '" +
                           r.header("x-consul-knownleader") + "', index " + r.header("x-consul-index");
                }
            } else {
                auto r = request("GET", node_target, {}, {}, timeout);
                last = "status " + std::to_string(r.status) + ", body " + trim(r.body).substr(0, 200);
                if (r.status == 200) {
                    auto checks = parse_json(r, node_target);
                    if (checks.is_array()) {
                        for (const auto& check : checks.as_array()) {
                            const auto* id = check.is_object() ? check.as_object().if_contains("CheckID") : nullptr;
                            const auto* st = check.is_object() ? check.as_object().if_contains("Status") : nullptr;
                            if (id && st && id->is_string() && st->is_string() && id->as_string() == "serfHealth" &&
                                st->as_string() == "passing") {
                                advanced = true;
                            }
                        }
                    }
                }
            }
        } catch (const std::exception& e) {
            last = e.what();
        }
        if (advanced) {
            ++stage;
            last.clear();
        } else {
            std::this_thread::sleep_for(readiness_poll);
        }
    }
}

// ---- consul_agent: stop ---------------------------------------------------------------------------------------

void consul_agent::kill_child() noexcept {
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        pid_ = 0;
    }
}

void consul_agent::stop() {
    if (external_ || stopped_) {
        return;
    }
    stopped_ = true;
    auto begin = clock_type::now();
    std::string how = "not running";
    if (pid_ > 0) {
        pid_t pid = pid_;
        how = "SIGINT";
        ::kill(pid_, SIGINT);
        bool exited = false;
        while (clock_type::now() - begin < stop_grace) {
            int status = 0;
            pid_t r = ::waitpid(pid_, &status, WNOHANG);
            if (r == pid_ || (r < 0 && errno == ECHILD)) {
                exited = true;
                break;
            }
            std::this_thread::sleep_for(10ms);
        }
        if (exited) {
            pid_ = 0;
        } else {
            how = "SIGKILL after " + seconds_text(stop_grace) + " of SIGINT";
            kill_child();
        }
        std::cout << "consul harness: stopped the agent (pid " << pid << ", " << how << ") in "
                  << seconds_text(clock_type::now() - begin) << std::endl;
    }
    if (!temp_dir_.empty()) {
        const char* keep = env("COLOCK_KEEP_AGENT_DIR");
        if (keep != nullptr && *keep != '\0' && std::string(keep) != "0") {
            std::cout << "consul harness: COLOCK_KEEP_AGENT_DIR is set; kept " << temp_dir_ << std::endl;
        } else {
            std::error_code ec;
            std::filesystem::remove_all(temp_dir_, ec);
            if (ec) {
                std::cerr << "consul harness: could not remove " << temp_dir_ << ": " << ec.message() << std::endl;
            }
        }
    }
}

std::string consul_agent::temp_root() {
    const char* tmp = env("TMPDIR");
    std::string root = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
    while (root.size() > 1 && root.back() == '/') {
        root.pop_back();
    }
    return root;
}

std::size_t consul_agent::remove_stale_temp_dirs() {
    std::size_t removed = 0;
    std::error_code ec;
    std::filesystem::directory_iterator it(temp_root(), ec), end;
    for (; !ec && it != end; it.increment(ec)) {
        std::string name = it->path().filename().string();
        if (name.rfind(temp_dir_prefix, 0) != 0) {
            continue;
        }
        // colock-consul-<pid>-XXXXXX
        std::string rest = name.substr(temp_dir_prefix.size());
        char* after = nullptr;
        long owner = std::strtol(rest.c_str(), &after, 10);
        struct stat st {};
        if (owner <= 0 || after == nullptr || *after != '-' || ::lstat(it->path().c_str(), &st) != 0 ||
            !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid()) {
            continue;
        }
        if (static_cast<pid_t>(owner) == ::getpid() || !process_gone(static_cast<pid_t>(owner))) {
            continue;
        }
        std::error_code rm;
        std::filesystem::remove_all(it->path(), rm);
        if (!rm) {
            ++removed;
            std::cout << "consul harness: removed " << it->path().string() << " (its test process " << owner
                      << " is gone)" << std::endl;
        }
    }
    return removed;
}

// ---- consul_agent: requests and state checks --------------------------------------------------------------------

std::string consul_agent::unique_prefix(std::string_view name) {
    std::string clean;
    for (unsigned char c : name) {
        clean += (std::isalnum(c) || c == '.' || c == '_' || c == '-') ? static_cast<char>(c) : '_';
    }
    if (clean.empty()) {
        clean = "_";
    }
    return "colock-test/" + std::to_string(::getpid()) + "-" + std::to_string(++g_prefix_counter) + "/" + clean +
           "/";
}

http_reply consul_agent::request(std::string_view method, std::string_view target, std::string_view body,
                                 std::map<std::string, std::string> headers) {
    return request(method, target, body, std::move(headers),
                   std::chrono::duration_cast<std::chrono::milliseconds>(default_request_timeout));
}

http_reply consul_agent::request(std::string_view method, std::string_view target, std::string_view body,
                                 std::map<std::string, std::string> headers, std::chrono::milliseconds timeout) {
    return http_request(host_, http_port_, method, target, body, headers, token_, timeout);
}

std::vector<std::string> consul_agent::keys_under(std::string_view prefix) {
    std::string target = "/v1/kv/" + encode_path(prefix) + "?keys";
    auto r = request("GET", target);
    if (r.status == 404) {
        return {};
    }
    if (r.status != 200) {
        throw std::runtime_error("consul harness: GET " + target + " answered " + std::to_string(r.status) + ": " +
                                 r.body.substr(0, 300));
    }
    std::vector<std::string> keys;
    auto v = parse_json(r, target);
    if (!v.is_array()) {
        throw std::runtime_error("consul harness: GET " + target + ": not a JSON array: " + r.body.substr(0, 300));
    }
    for (const auto& k : v.as_array()) {
        if (k.is_string()) {
            keys.emplace_back(k.as_string());
        }
    }
    std::sort(keys.begin(), keys.end());
    return keys;
}

std::vector<std::string> consul_agent::sessions_named(std::string_view name_prefix) {
    const std::string target = "/v1/session/list";
    auto r = request("GET", target);
    if (r.status != 200) {
        throw std::runtime_error("consul harness: GET " + target + " answered " + std::to_string(r.status) + ": " +
                                 r.body.substr(0, 300));
    }
    auto v = parse_json(r, target);
    if (!v.is_array()) {
        throw std::runtime_error("consul harness: GET " + target + ": not a JSON array: " + r.body.substr(0, 300));
    }
    std::vector<std::string> ids;
    for (const auto& s : v.as_array()) {
        if (!s.is_object()) {
            continue;
        }
        const auto* name = s.as_object().if_contains("Name");
        const auto* id = s.as_object().if_contains("ID");
        if (name && id && name->is_string() && id->is_string() &&
            std::string_view(name->as_string()).substr(0, name_prefix.size()) == name_prefix) {
            ids.emplace_back(id->as_string());
        }
    }
    return ids;
}

// ---- the global fixture -------------------------------------------------------------------------------------------

void consul_agent_fixture::setup() {
    consul_agent::instance();
}

void consul_agent_fixture::teardown() {
    std::lock_guard lock(g_mutex);
    if (g_agent) {
        g_agent->stop();
    }
}

} // namespace colock::test
