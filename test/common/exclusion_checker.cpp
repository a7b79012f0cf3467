#include "exclusion_checker.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <fstream>
#include <iterator>
#include <sstream>
#include <utility>

namespace colock::test {

namespace json = boost::json;

std::size_t exclusion_report::total_acquisitions() const noexcept
{
    std::size_t n = 0;
    for (const auto& [who, count] : acquisitions)
        n += count;
    return n;
}

std::size_t exclusion_report::handoffs_between_groups() const
{
    auto group = [](const std::string& who) { return who.substr(0, who.find('-')); };
    std::size_t n = 0;
    for (std::size_t i = 1; i < order.size(); ++i)
        if (group(order[i]) != group(order[i - 1]))
            ++n;
    return n;
}

std::string exclusion_report::summary() const
{
    std::ostringstream s;
    s << lines << " lines, " << total_acquisitions() << " acquisitions (";
    const char* sep = "";
    for (const auto& [who, count] : acquisitions) {
        s << sep << who << " " << count;
        sep = ", ";
    }
    s << "), max concurrent " << max_concurrent << ", " << handoffs_between_groups() << " handoffs between groups, "
      << violations.size() << " violation(s)";
    if (!violations.empty())
        s << "; first: " << violations.front();
    return s.str();
}

exclusion_checker::exclusion_checker(std::size_t limit) : limit_(limit) {}

void exclusion_checker::violation(std::string what)
{
    report_.violations.push_back("line " + std::to_string(report_.lines) + ": " + std::move(what));
}

namespace {

// A non-negative JSON integer as uint64 (never through a double); false if it is not one.
bool as_uint64(const json::value& v, std::uint64_t& out)
{
    if (v.is_uint64()) {
        out = v.as_uint64();
        return true;
    }
    if (v.is_int64() && v.as_int64() >= 0) {
        out = static_cast<std::uint64_t>(v.as_int64());
        return true;
    }
    return false;
}

} // namespace

void exclusion_checker::feed(std::string_view line)
{
    if (line.find_first_not_of(" \t\r") == std::string_view::npos)
        return;
    ++report_.lines;
    boost::system::error_code ec;
    const json::value v = json::parse(line, ec);
    if (ec || !v.is_object()) {
        violation("not a JSON object: " + std::string(line));
        return;
    }
    const auto& o = v.as_object();
    const auto* who_v = o.if_contains("who");
    const auto* ev_v = o.if_contains("ev");
    const auto* t_v = o.if_contains("t");
    std::uint64_t t = 0;
    if (!who_v || !who_v->is_string() || who_v->as_string().empty() || !ev_v || !ev_v->is_string() || !t_v ||
        !as_uint64(*t_v, t)) {
        violation("needs a string \"who\", a string \"ev\" and an integer \"t\": " + std::string(line));
        return;
    }
    const std::string who(who_v->as_string());
    const std::string_view ev = ev_v->as_string();
    std::uint64_t token = 0;
    if (const auto* tok = o.if_contains("token"); tok && (!as_uint64(*tok, token) || token == 0)) {
        violation(who + ": \"token\" is not a positive integer: " + std::string(line));
        return;
    }

    if (ev == "enter") {
        if (auto it = inside_.find(who); it != inside_.end()) {
            violation(who + " enters again while inside since line " + std::to_string(it->second));
            return;
        }
        inside_.emplace(who, report_.lines);
        ++report_.acquisitions[who];
        report_.order.push_back(who);
        if (inside_.size() > report_.max_concurrent)
            report_.max_concurrent = inside_.size();
        if (inside_.size() > limit_) {
            std::string names;
            for (const auto& [w, since] : inside_)
                names += (names.empty() ? "" : ", ") + w + " (since line " + std::to_string(since) + ")";
            violation(std::to_string(inside_.size()) + " inside at once, limit " + std::to_string(limit_) + ": " +
                      names);
        }
        if (token != 0) {
            if (auto [it, fresh] = token_lines_.emplace(token, report_.lines); !fresh)
                violation(who + " enters with token " + std::to_string(token) + ", already used on line " +
                          std::to_string(it->second));
            else if (limit_ == 1 && token <= last_token_)
                violation(who + " enters with token " + std::to_string(token) + ", not above the previous " +
                          std::to_string(last_token_));
            if (token > last_token_)
                last_token_ = token;
        }
    } else if (ev == "exit") {
        if (inside_.erase(who) == 0)
            violation(who + " exits without being inside");
    } else {
        violation(who + ": \"ev\" is neither enter nor exit: " + std::string(line));
    }
}

void exclusion_checker::feed_text(std::string_view text)
{
    while (!text.empty()) {
        const auto nl = text.find('\n');
        feed(text.substr(0, nl));
        if (nl == std::string_view::npos)
            break;
        text.remove_prefix(nl + 1);
    }
}

exclusion_report exclusion_checker::finish() const
{
    exclusion_report r = report_;
    for (const auto& [who, since] : inside_)
        r.violations.push_back("end of history: " + who + " is still inside since line " + std::to_string(since));
    return r;
}

exclusion_report exclusion_checker::check_file(const std::string& path, std::size_t limit)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        exclusion_report r;
        r.violations.push_back("cannot read the history " + path);
        return r;
    }
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    exclusion_checker c(limit);
    c.feed_text(text);
    exclusion_report r = c.finish();
    if (!text.empty() && text.back() != '\n')
        r.violations.push_back("the history does not end with a newline (a torn last line)");
    return r;
}

} // namespace colock::test
