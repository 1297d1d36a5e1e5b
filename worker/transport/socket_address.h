// "host:port" addresses of activation receivers, resolved to socket addresses for
// UCX's client/server connection establishment. IPv6 literals are written in
// brackets ("[::1]:5000") so the last ':' always separates the port.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "common/status.h"

namespace conveyor {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  std::string host;  // as given (name or literal, without brackets)
  std::uint16_t port = 0;

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

// Resolves `host` (a name or a numeric literal) with getaddrinfo; the first result
// wins. kInvalidArgument for an empty host, kNotFound when it does not resolve.
Expected<SocketAddress> resolve_address(const std::string& host, std::uint16_t port);

// Splits "host:port" / "[v6]:port" and resolves it; kInvalidArgument when the text is
// not of that form or the port is not 1..65535.
Expected<SocketAddress> parse_address(const std::string& host_port);

// "host:port", with brackets around a host that contains ':'.
std::string format_address(const std::string& host, std::uint16_t port);

}  // namespace conveyor
