#include "coordinator/cluster/server_security.h"

#include "common/zmq/curve_keys.h"
#include "common/zmq/curve_socket.h"
#include "common/zmq/zmq_version.h"

namespace conveyor {

Expected<ServerSecurity> setup_server_security(zmq::context_t& context,
                                               const RunConfig::Cluster& cluster) {
  ServerSecurity security;
  if (cluster.server_key.empty()) {
    security.describe = "no encryption (cluster.server_key not set)";
    return security;
  }
  if (!curve_available()) {
    return Status(ErrorCode::kUnsupported,
                  "cluster.server_key is set but this libzmq has no CURVE support");
  }
  Expected<CurveKeyPair> server = load_key_pair(cluster.server_key);
  if (!server.ok()) return server.status();
  Expected<std::set<std::string>> producers = load_allowed_keys(cluster.producer_keys);
  if (!producers.ok()) return producers.status();
  Expected<std::set<std::string>> workers = load_allowed_keys(cluster.worker_keys);
  if (!workers.ok()) return workers.status();
  const std::size_t producer_count = producers->size(), worker_count = workers->size();
  Expected<std::unique_ptr<ZapHandler>> zap = ZapHandler::start(
      context,
      {{"producers", std::move(producers).value()}, {"workers", std::move(workers).value()}});
  if (!zap.ok()) {
    return Status(zap.status().code(),
                  "keys are configured but the ZAP handler cannot run: " + zap.status().message());
  }
  security.enabled = true;
  security.zap = std::move(zap).value();
  const CurveKeyPair keys = *server;
  security.producers = [keys](zmq::socket_t& s) { make_curve_server(s, keys, "producers"); };
  security.workers = [keys](zmq::socket_t& s) { make_curve_server(s, keys, "workers"); };
  security.describe = "CurveZMQ, " + std::to_string(producer_count) + " producer key(s), " +
                      std::to_string(worker_count) + " worker key(s)";
  return security;
}

Expected<std::function<void(zmq::socket_t&)>> client_security(const std::string& client_key_file,
                                                              const std::string& server_key_file) {
  if (client_key_file.empty() && server_key_file.empty()) {
    return std::function<void(zmq::socket_t&)>();
  }
  if (client_key_file.empty() || server_key_file.empty()) {
    return Status(ErrorCode::kInvalidArgument,
                  "CurveZMQ needs both the client's key-pair file and the server's public key");
  }
  Expected<CurveKeyPair> client = load_key_pair(client_key_file);
  if (!client.ok()) return client.status();
  Expected<std::string> server = load_public_key(server_key_file);
  if (!server.ok()) return server.status();
  const CurveKeyPair keys = *client;
  const std::string server_public = *server;
  return std::function<void(zmq::socket_t&)>(
      [keys, server_public](zmq::socket_t& s) { make_curve_client(s, keys, server_public); });
}

}  // namespace conveyor
