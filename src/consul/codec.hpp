#ifndef COLOCK_SRC_CONSUL_CODEC_HPP
#define COLOCK_SRC_CONSUL_CODEC_HPP

// JSON bodies of Consul's HTTP API. Decoders never trust the input: any type mismatch, missing
// field, malformed base64, number out of the uint64 range or a float where an integer belongs
// yields errc::bad_response and leaves no partial result behind.

#include <colock/consul/kv.hpp>
#include <colock/consul/session_id.hpp>
#include <colock/consul/session_options.hpp>
#include <colock/consul/txn.hpp>
#include <colock/error.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace colock::consul::detail {

error_code decode_kv_entries(std::string_view body, std::vector<kv_entry>& out);
error_code decode_keys(std::string_view body, std::vector<std::string>& out);
/// A bare `true` / `false` body (KV put and delete, session destroy); surrounding whitespace allowed.
error_code decode_bool(std::string_view body, bool& out);
/// {"ID":"<uuid>"} from /v1/session/create.
error_code decode_session_created(std::string_view body, session_id& out);
error_code decode_session_entries(std::string_view body, std::vector<session_entry>& out);
/// The reply to a renewal: the full entry when it decodes, else just its ID and TTL (the rest of
/// the entry is not needed to renew and must not fail it). `vanished`: the reply is `[]`.
error_code decode_session_renewal(std::string_view body, session_entry& out, bool& vanished);
/// The body of /v1/txn, for both 200 (committed) and 409 (rolled back).
error_code decode_txn_result(std::string_view body, txn_result& out);
/// A JSON string, e.g. "127.0.0.1:8300" from /v1/status/leader.
error_code decode_json_string(std::string_view body, std::string& out);
/// Config.Datacenter of /v1/agent/self: the name of the agent's own datacenter.
error_code decode_agent_datacenter(std::string_view body, std::string& out);

std::string encode_session_create(const session_options& s);
std::string encode_txn(const std::vector<txn_op>& ops);
std::string_view txn_verb_name(txn_verb v) noexcept;

/// Strict decimal uint64 (header values such as X-Consul-Index): digits only, no sign, no overflow.
std::optional<std::uint64_t> parse_uint64(std::string_view text) noexcept;

} // namespace colock::consul::detail

#endif
