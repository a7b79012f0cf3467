#ifndef COLOCK_SRC_CONSUL_OPS_HPP
#define COLOCK_SRC_CONSUL_OPS_HPP

// The bodies of the client's operations as coroutines, for colock's own internals (sessions,
// watches, recipes) that need them without the public wrapper's registration: e.g. a background
// session destroy that client::cancel() must not abort.

#include <colock/consul/kv.hpp>
#include <colock/consul/query.hpp>
#include <colock/consul/session_options.hpp>
#include <colock/consul/txn.hpp>

#include "consul/client_impl.hpp"

#include <boost/asio/awaitable.hpp>

#include <memory>
#include <tuple>

namespace colock::consul::detail {

template <class T>
using body_result = boost::asio::awaitable<std::tuple<error_code, T>>;
using client_ptr = std::shared_ptr<client_impl>;

body_result<kv_get_result> kv_get_body(client_ptr impl, std::string key, query_options o);
body_result<kv_list_result> kv_list_body(client_ptr impl, std::string prefix, query_options o);
body_result<kv_keys_result> kv_keys_body(client_ptr impl, std::string prefix, std::string separator, query_options o);
body_result<bool> kv_put_body(client_ptr impl, std::string key, std::string value, kv_put_options p, write_options o);
body_result<bool> kv_delete_body(client_ptr impl, std::string key, kv_delete_options d, write_options o);
// `read_mode` applies to transactions of reads and checks only (Consul serves them like reads).
body_result<txn_result> txn_body(client_ptr impl, std::vector<txn_op> ops, write_options o,
                                 consistency_mode read_mode = consistency_mode::default_mode);
body_result<session_id> session_create_body(client_ptr impl, session_options s, write_options o);
body_result<session_entry> session_renew_body(client_ptr impl, session_id id, write_options o);
body_result<bool> session_destroy_body(client_ptr impl, session_id id, write_options o);
body_result<session_info_result> session_info_body(client_ptr impl, session_id id, query_options o);
body_result<std::string> status_leader_body(client_ptr impl, request_options o);
/// The name of the agent's own datacenter (/v1/agent/self; the token needs agent:read).
body_result<std::string> agent_datacenter_body(client_ptr impl, request_options o);

} // namespace colock::consul::detail

#endif
