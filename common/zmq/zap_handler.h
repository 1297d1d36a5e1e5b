// The ZAP handler (ZeroMQ RFC 27) that decides which CurveZMQ clients a server admits.
// libzmq asks it over `inproc://zeromq.zap.01` on the server socket's context during
// every CURVE handshake; the handler answers from its own thread.
//
// Policy: per ZAP domain (a server socket's ZMQ_ZAP_DOMAIN, e.g. "producers" and
// "workers"), a set of allowed CURVE public keys. Admitted (200): mechanism CURVE and a
// key in that domain's set. Refused (400): any other mechanism, an unknown key, a
// domain without a set. The reply's user id is the client's Z85 public key, which the
// server reads from a message's "User-Id" property.
//
// Only one handler can serve a context: start() fails when the endpoint is taken, and
// a coordinator with keys configured refuses to start then. If the handler's thread
// ever stops on its own, its socket stays bound until destruction, so handshakes wait
// unanswered instead of passing unchecked.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "common/status.h"

namespace conveyor {

class ZapHandler {
 public:
  // Domain -> allowed CURVE public keys (Z85).
  using AllowedKeys = std::map<std::string, std::set<std::string>>;

  static constexpr char kEndpoint[] = "inproc://zeromq.zap.01";

  // Binds the ZAP endpoint on `context` and starts answering. Errors: kUnavailable when
  // the endpoint is already bound (another handler), kInvalidArgument for an empty
  // domain name or a key that is not Z85. The handler must be destroyed before the
  // context is closed (its sockets would keep zmq_ctx_term waiting).
  static Expected<std::unique_ptr<ZapHandler>> start(zmq::context_t& context,
                                                     AllowedKeys allowed_by_domain);

  // Stops the thread (or finds it stopped by a context shutdown) and closes the sockets.
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  // Handshakes admitted / refused in a configured domain (0 for other domains).
  std::uint64_t accepted(const std::string& domain) const;
  std::uint64_t rejected(const std::string& domain) const;
  // Refused requests for a domain without an allowed set, and malformed requests.
  std::uint64_t rejected_other() const { return rejected_other_.load(); }
  // False once the thread has stopped (context shut down, or an unexpected error).
  bool running() const { return running_.load(); }

 private:
  struct Domain {
    std::set<std::string> keys;  // 32-byte binary public keys, as ZAP carries them
    std::atomic<std::uint64_t> accepted{0};
    std::atomic<std::uint64_t> rejected{0};
  };
  struct Reply {
    std::string status_code;
    std::string status_text;
    std::string user_id;
  };

  ZapHandler(zmq::context_t& context, zmq::socket_t zap);
  void run();
  Reply answer(const std::vector<zmq::message_t>& request);

  zmq::socket_t zap_;
  zmq::socket_t control_;      // the thread's end: a message means stop
  zmq::socket_t stop_sender_;  // the owner's end
  std::map<std::string, Domain> domains_;
  std::atomic<std::uint64_t> rejected_other_{0};
  std::atomic<bool> running_{true};
  std::thread thread_;
};

}  // namespace conveyor
