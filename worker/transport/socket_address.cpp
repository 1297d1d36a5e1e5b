#include "worker/transport/socket_address.h"

#include <netdb.h>

#include <charconv>
#include <cstring>
#include <memory>

namespace conveyor {

Expected<SocketAddress> resolve_address(const std::string& host, std::uint16_t port) {
  if (host.empty()) return Status(ErrorCode::kInvalidArgument, "empty host name");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
  if (rc != 0) {
    return Status(ErrorCode::kNotFound,
                  "cannot resolve '" + host + "': " + std::string(::gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owner(found, &::freeaddrinfo);
  if (found->ai_addrlen > sizeof(sockaddr_storage)) {
    return Status(ErrorCode::kInternal, "resolved address does not fit sockaddr_storage");
  }
  SocketAddress address;
  std::memcpy(&address.storage, found->ai_addr, found->ai_addrlen);
  address.length = found->ai_addrlen;
  address.host = host;
  address.port = port;
  return address;
}

Expected<SocketAddress> parse_address(const std::string& host_port) {
  const auto colon = host_port.rfind(':');
  if (colon == std::string::npos || colon + 1 == host_port.size()) {
    return Status(ErrorCode::kInvalidArgument, "address '" + host_port + "' is not host:port");
  }
  std::string host = host_port.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return Status(ErrorCode::kInvalidArgument,
                  "address '" + host_port + "': an IPv6 host needs brackets");
  }
  const char* first = host_port.data() + colon + 1;
  const char* last = host_port.data() + host_port.size();
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(first, last, port);
  if (ec != std::errc() || end != last || port == 0 || port > 65535) {
    return Status(ErrorCode::kInvalidArgument, "address '" + host_port + "': bad port");
  }
  return resolve_address(host, static_cast<std::uint16_t>(port));
}

std::string format_address(const std::string& host, std::uint16_t port) {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

}  // namespace conveyor
