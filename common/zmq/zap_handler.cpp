#include "common/zmq/zap_handler.h"

#include <zmq.h>

#include <array>
#include <chrono>
#include <iterator>

#include <zmq_addon.hpp>

#include "common/zmq/curve_keys.h"

namespace conveyor {
namespace {

constexpr std::size_t kCurveKeyBytes = 32;

// RFC 27 request frames.
enum Frame : std::size_t {
  kVersion = 0,
  kRequestId,
  kDomain,
  kAddress,
  kIdentity,
  kMechanism,
  kFirstCredential,
};

std::string decode_key(const std::string& domain, const std::string& z85) {
  if (Status s = check_z85_key(z85); !s.ok()) {
    fail(ErrorCode::kInvalidArgument, "ZAP domain '" + domain + "': " + s.message());
  }
  std::array<std::uint8_t, kCurveKeyBytes> bytes{};
  zmq_z85_decode(bytes.data(), z85.c_str());
  return std::string(bytes.begin(), bytes.end());
}

std::string encode_key(const zmq::message_t& key) {
  char z85[kZ85KeyLength + 1] = {};
  zmq_z85_encode(z85, key.data<std::uint8_t>(), kCurveKeyBytes);
  return z85;
}

// Each handler's control pair needs its own inproc name on a shared context.
std::string control_endpoint() {
  static std::atomic<std::uint64_t> next{0};
  return "inproc://conveyor.zap-control." + std::to_string(next.fetch_add(1));
}

}  // namespace

Expected<std::unique_ptr<ZapHandler>> ZapHandler::start(zmq::context_t& context,
                                                        AllowedKeys allowed_by_domain) {
  return to_expected([&] {
    std::map<std::string, std::set<std::string>> binary_keys;
    for (const auto& [domain, keys] : allowed_by_domain) {
      if (domain.empty()) fail(ErrorCode::kInvalidArgument, "a ZAP domain needs a name");
      std::set<std::string>& binary = binary_keys[domain];
      for (const std::string& key : keys)
        binary.insert(decode_key(domain, key));
    }
    zmq::socket_t zap(context, zmq::socket_type::rep);
    zap.set(zmq::sockopt::linger, 0);
    try {
      zap.bind(kEndpoint);
    } catch (const zmq::error_t& e) {
      if (e.num() == EADDRINUSE) {
        fail(ErrorCode::kUnavailable, std::string("cannot start the ZAP handler: ") + kEndpoint +
                                          " is already bound on this context (another handler)");
      }
      fail(ErrorCode::kUnavailable,
           std::string("cannot start the ZAP handler: binding ") + kEndpoint + ": " + e.what());
    }
    std::unique_ptr<ZapHandler> handler(new ZapHandler(context, std::move(zap)));
    for (auto& [domain, keys] : binary_keys)
      handler->domains_[domain].keys = std::move(keys);
    handler->thread_ = std::thread([raw = handler.get()] { raw->run(); });
    return handler;
  });
}

ZapHandler::ZapHandler(zmq::context_t& context, zmq::socket_t zap)
    : zap_(std::move(zap)),
      control_(context, zmq::socket_type::pair),
      stop_sender_(context, zmq::socket_type::pair) {
  const std::string endpoint = control_endpoint();
  control_.set(zmq::sockopt::linger, 0);
  stop_sender_.set(zmq::sockopt::linger, 0);
  control_.bind(endpoint);
  stop_sender_.connect(endpoint);
}

ZapHandler::~ZapHandler() {
  try {
    stop_sender_.send(zmq::message_t(), zmq::send_flags::dontwait);
  } catch (const zmq::error_t&) {
    // ETERM: the context was shut down, which has stopped the thread already.
  }
  if (thread_.joinable()) thread_.join();
}

std::uint64_t ZapHandler::accepted(const std::string& domain) const {
  const auto it = domains_.find(domain);
  return it == domains_.end() ? 0 : it->second.accepted.load();
}

std::uint64_t ZapHandler::rejected(const std::string& domain) const {
  const auto it = domains_.find(domain);
  return it == domains_.end() ? 0 : it->second.rejected.load();
}

void ZapHandler::run() {
  std::array<zmq::pollitem_t, 2> items{
      {{zap_.handle(), 0, ZMQ_POLLIN, 0}, {control_.handle(), 0, ZMQ_POLLIN, 0}}};
  for (;;) {
    try {
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(-1));
      if (items[1].revents & ZMQ_POLLIN) break;
      if (!(items[0].revents & ZMQ_POLLIN)) continue;
      std::vector<zmq::message_t> request;
      if (!zmq::recv_multipart(zap_, std::back_inserter(request), zmq::recv_flags::dontwait)) {
        continue;
      }
      Reply reply;
      try {
        reply = answer(request);
      } catch (const std::exception&) {  // bad_alloc: refuse, and keep serving
        reply = {"500", "internal error", ""};
      }
      // A REP socket must answer every request, even one without a request id.
      std::array<zmq::message_t, 6> frames{
          zmq::message_t(std::string_view("1.0")),
          request.size() > kRequestId
              ? zmq::message_t(request[kRequestId].data(), request[kRequestId].size())
              : zmq::message_t(),
          zmq::message_t(reply.status_code),
          zmq::message_t(reply.status_text),
          zmq::message_t(reply.user_id),
          zmq::message_t()};
      zmq::send_multipart(zap_, frames);
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      break;  // ETERM (context shut down) or a broken socket
    }
  }
  running_.store(false);
}

ZapHandler::Reply ZapHandler::answer(const std::vector<zmq::message_t>& request) {
  if (request.size() < kFirstCredential || request[kVersion].to_string_view() != "1.0") {
    rejected_other_.fetch_add(1);
    return {"500", "malformed ZAP request", ""};
  }
  const auto it = domains_.find(request[kDomain].to_string());
  if (it == domains_.end()) {
    rejected_other_.fetch_add(1);
    return {"400", "no keys are allowed in this ZAP domain", ""};
  }
  Domain& domain = it->second;
  if (request[kMechanism].to_string_view() != "CURVE") {
    domain.rejected.fetch_add(1);
    return {"400", "CURVE required", ""};
  }
  if (request.size() != kFirstCredential + 1 ||
      request[kFirstCredential].size() != kCurveKeyBytes) {
    domain.rejected.fetch_add(1);
    return {"400", "malformed CURVE credentials", ""};
  }
  const zmq::message_t& key = request[kFirstCredential];
  if (!domain.keys.contains(std::string(key.data<char>(), key.size()))) {
    domain.rejected.fetch_add(1);
    return {"400", "unknown CURVE key", ""};
  }
  domain.accepted.fetch_add(1);
  return {"200", "OK", encode_key(key)};
}

}  // namespace conveyor
