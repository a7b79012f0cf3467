#ifndef COLOCK_BENCH_AGENT_LOG_HPP
#define COLOCK_BENCH_AGENT_LOG_HPP

// What the agent saw: an agent started by the harness logs every HTTP request at debug level
//     ... [DEBUG] agent.http: Request finished: method=PUT url=/v1/txn from=127.0.0.1:49364 latency="82.893µs"
// so the requests a client made during a stretch of time (and the agent's own time for them) can be
// counted from the bytes the log grew by. A request is logged when it finishes, so a blocking read
// counts where it ends.

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace colock::bench {

struct request_tally {
    std::int64_t count = 0;
    std::int64_t agent_ns = 0; // the agent's logged latency, summed
};

// "PUT /v1/kv?acquire&flags": method, path with keys and ids left out, and the parameter names.
inline std::string request_kind(std::string_view method, std::string_view url)
{
    std::string_view path = url.substr(0, url.find('?'));
    std::string_view query = url.size() > path.size() ? url.substr(path.size() + 1) : std::string_view();
    std::string shape(path);
    for (std::string_view prefix : {"/v1/kv/", "/v1/session/renew/", "/v1/session/destroy/", "/v1/session/info/"}) {
        if (path.substr(0, prefix.size()) == prefix) {
            shape = std::string(prefix.substr(0, prefix.size() - 1));
        }
    }
    std::set<std::string> names;
    while (!query.empty()) {
        std::string_view item = query.substr(0, query.find('&'));
        names.insert(std::string(item.substr(0, item.find('='))));
        query.remove_prefix(std::min(query.size(), item.size() + 1));
    }
    std::string kind = std::string(method) + " " + shape;
    char sep = '?';
    for (const auto& n : names) {
        kind += sep + n;
        sep = '&';
    }
    return kind;
}

// A Go duration as Consul prints it ("82.893µs", "22.6ms", "1m2.5s") in nanoseconds; 0 if unreadable.
inline std::int64_t go_duration_ns(std::string_view text)
{
    double total = 0;
    while (!text.empty()) {
        std::size_t i = 0;
        while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
            ++i;
        }
        if (i == 0) {
            return 0;
        }
        double v = std::stod(std::string(text.substr(0, i)));
        text.remove_prefix(i);
        double unit = 0;
        for (auto [name, ns] : {std::pair<std::string_view, double>{"ns", 1}, {"\xC2\xB5s", 1e3}, {"us", 1e3},
                                {"ms", 1e6}, {"h", 3.6e12}, {"m", 6e10}, {"s", 1e9}}) {
            if (text.substr(0, name.size()) == name) {
                unit = ns;
                text.remove_prefix(name.size());
                break;
            }
        }
        if (unit == 0) {
            return 0;
        }
        total += v * unit;
    }
    return std::int64_t(total);
}

// The value of `name=` in a log line (quoted or not).
inline std::string_view log_field(std::string_view line, std::string_view name)
{
    std::string key = " " + std::string(name) + "=";
    auto at = line.find(key);
    if (at == std::string_view::npos) {
        return {};
    }
    std::string_view v = line.substr(at + key.size());
    if (!v.empty() && v.front() == '"') {
        v.remove_prefix(1);
        return v.substr(0, v.find('"'));
    }
    return v.substr(0, v.find(' '));
}

class agent_log {
public:
    explicit agent_log(std::string path) : path_(std::move(path)) {}

    bool available() const { return !path_.empty(); }

    // The log's current size: a mark to tally from.
    std::int64_t mark() const
    {
        if (path_.empty()) {
            return 0;
        }
        std::ifstream in(path_, std::ios::binary | std::ios::ate);
        return in ? std::int64_t(in.tellg()) : 0;
    }

    // Adds the requests logged between two marks to `into`.
    void tally(std::int64_t from, std::int64_t to, std::map<std::string, request_tally>& into) const
    {
        if (path_.empty() || to <= from) {
            return;
        }
        std::ifstream in(path_, std::ios::binary);
        in.seekg(from);
        std::string text(std::size_t(to - from), '\0');
        in.read(text.data(), std::streamsize(text.size()));
        text.resize(std::size_t(in.gcount()));
        std::size_t pos = 0;
        while (pos < text.size()) {
            std::size_t end = text.find('\n', pos);
            if (end == std::string::npos) {
                end = text.size();
            }
            std::string_view line(text.data() + pos, end - pos);
            pos = end + 1;
            if (line.find("Request finished:") == std::string_view::npos) {
                continue;
            }
            auto& t = into[request_kind(log_field(line, "method"), log_field(line, "url"))];
            ++t.count;
            t.agent_ns += go_duration_ns(log_field(line, "latency"));
        }
    }

private:
    std::string path_;
};

} // namespace colock::bench

#endif
