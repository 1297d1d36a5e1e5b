#include "common/zmq/curve_socket.h"

#include <zmq.h>

#include "common/zmq/zmq_version.h"

namespace conveyor {
namespace {

#ifdef ZMQ_ZAP_ENFORCE_DOMAIN
constexpr int kZapEnforceDomainOption = ZMQ_ZAP_ENFORCE_DOMAIN;
#else
// Its value in libzmq's draft API (4.2.3 and later): the stable headers do not define
// it, but a libzmq built with drafts accepts it.
constexpr int kZapEnforceDomainOption = 93;
#endif

void require_curve() {
  if (!curve_available()) fail(ErrorCode::kUnsupported, "this libzmq was built without CURVE");
}

void check_key(const std::string& key, const char* what) {
  if (Status s = check_z85_key(key); !s.ok()) {
    fail(ErrorCode::kInvalidArgument, std::string(what) + ": " + s.message());
  }
}

// Runs a socket option setter, translating zmq::error_t where it is first seen.
template <typename Fn>
void set_option(const char* what, Fn&& set) {
  try {
    set();
  } catch (const zmq::error_t& e) {
    fail(ErrorCode::kInvalidArgument, std::string("setting ") + what + ": " + e.what());
  }
}

}  // namespace

void make_curve_server(zmq::socket_t& socket, const CurveKeyPair& server,
                       const std::string& zap_domain) {
  require_curve();
  check_key(server.secret_key, "server secret key");
  if (zap_domain.empty()) {
    fail(ErrorCode::kInvalidArgument, "a CURVE server needs a ZAP domain to check keys in");
  }
  set_option("ZMQ_CURVE_SERVER", [&] { socket.set(zmq::sockopt::curve_server, true); });
  set_option("ZMQ_CURVE_SECRETKEY",
             [&] { socket.set(zmq::sockopt::curve_secretkey, server.secret_key); });
  set_option("ZMQ_ZAP_DOMAIN", [&] { socket.set(zmq::sockopt::zap_domain, zap_domain); });
  const int enforce = 1;
  // EINVAL where libzmq lacks the draft option; the handler is still required by the
  // coordinator, which refuses to start without one.
  (void)zmq_setsockopt(socket.handle(), kZapEnforceDomainOption, &enforce, sizeof(enforce));
}

void make_curve_client(zmq::socket_t& socket, const CurveKeyPair& client,
                       const std::string& server_public_key) {
  require_curve();
  check_key(client.public_key, "client public key");
  check_key(client.secret_key, "client secret key");
  check_key(server_public_key, "server public key");
  set_option("ZMQ_CURVE_SERVERKEY",
             [&] { socket.set(zmq::sockopt::curve_serverkey, server_public_key); });
  set_option("ZMQ_CURVE_PUBLICKEY",
             [&] { socket.set(zmq::sockopt::curve_publickey, client.public_key); });
  set_option("ZMQ_CURVE_SECRETKEY",
             [&] { socket.set(zmq::sockopt::curve_secretkey, client.secret_key); });
}

}  // namespace conveyor
