// Addresses of a node in the cluster: ZeroMQ endpoints and the local address other
// nodes reach this one at.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace conveyor {

struct TcpEndpoint {
  std::string host;
  std::uint16_t port = 0;
};

// "tcp://HOST:PORT" -> {HOST, PORT}; kInvalidArgument otherwise.
Expected<TcpEndpoint> parse_tcp_endpoint(const std::string& endpoint);

// The local IP address this host uses to reach `peer` (the one a peer on that
// network can connect back to): the source address the kernel picks for a UDP
// "connection" to it. No packet is sent.
Expected<std::string> local_address_towards(const TcpEndpoint& peer);

// hostname-pid: a worker's default name.
std::string default_node_name();

}  // namespace conveyor
