#ifndef COLOCK_SRC_DETAIL_ENCODING_HPP
#define COLOCK_SRC_DETAIL_ENCODING_HPP

#include <optional>
#include <string>
#include <string_view>

namespace colock::detail {

/// Standard base64 (RFC 4648, with padding), as Consul encodes KV values.
std::string base64_encode(std::string_view bytes);
/// Strict decoding: only the standard alphabet, correct padding, no whitespace. Empty on bad input.
std::optional<std::string> base64_decode(std::string_view text);

/// Percent-encodes a KV key for a URL path: unreserved characters and '/' pass, the rest is %XX.
std::string encode_key_path(std::string_view key);
/// Percent-encodes a query parameter value.
std::string encode_query_value(std::string_view value);

/// Untrusted server text made safe for a log line or a message: at most `max` bytes, control and
/// non-ASCII bytes shown as \xNN.
std::string printable(std::string_view text, std::size_t max = 512);

} // namespace colock::detail

#endif
