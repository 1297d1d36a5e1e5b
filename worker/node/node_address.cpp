#include "worker/node/node_address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace conveyor {

Expected<TcpEndpoint> parse_tcp_endpoint(const std::string& endpoint) {
  const std::string prefix = "tcp://";
  const auto bad = [&] {
    return Status(ErrorCode::kInvalidArgument,
                  "'" + endpoint + "' is not an endpoint of the form tcp://HOST:PORT");
  };
  if (endpoint.rfind(prefix, 0) != 0) return bad();
  const std::string rest = endpoint.substr(prefix.size());
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size()) return bad();
  TcpEndpoint out;
  out.host = rest.substr(0, colon);
  if (out.host.size() > 2 && out.host.front() == '[' && out.host.back() == ']')
    out.host = out.host.substr(1, out.host.size() - 2);
  unsigned long port = 0;
  for (char c : rest.substr(colon + 1)) {
    if (c < '0' || c > '9') return bad();
    port = port * 10 + static_cast<unsigned long>(c - '0');
    if (port > 65535) return bad();
  }
  out.port = static_cast<std::uint16_t>(port);
  return out;
}

Expected<std::string> local_address_towards(const TcpEndpoint& peer) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(peer.port == 0 ? 9 : peer.port);
  if (int rc = ::getaddrinfo(peer.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return Status(ErrorCode::kUnavailable,
                  "cannot resolve " + peer.host + ": " + ::gai_strerror(rc));
  }
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  Status status;
  std::string address;
  if (fd < 0) {
    status = Status(ErrorCode::kIo, std::string("socket: ") + std::strerror(errno));
  } else if (::connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
    status =
        Status(ErrorCode::kUnavailable, "no route to " + peer.host + ": " + std::strerror(errno));
  } else {
    sockaddr_in local{};
    socklen_t length = sizeof(local);
    std::array<char, INET_ADDRSTRLEN> text{};
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) != 0 ||
        ::inet_ntop(AF_INET, &local.sin_addr, text.data(), text.size()) == nullptr) {
      status = Status(ErrorCode::kIo, std::string("getsockname: ") + std::strerror(errno));
    } else {
      address = text.data();
    }
  }
  if (fd >= 0) ::close(fd);
  ::freeaddrinfo(found);
  if (!status.ok()) return status;
  return address;
}

std::string default_node_name() {
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) std::strcpy(host.data(), "node");
  return std::string(host.data()) + "-" + std::to_string(::getpid());
}

}  // namespace conveyor
