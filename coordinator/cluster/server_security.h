// The coordinator's CurveZMQ setup: with keys configured, both of its sockets
// (producers, workers) encrypt with its key pair, and a ZAP handler admits only the
// public keys listed for each (domains "producers" and "workers"). Keys come from
// files, never from the config itself. If keys are configured and anything of this
// cannot be set up (a file, libzmq without CURVE, the handler), the coordinator does
// not start: running open when the operator asked for authentication is worse than
// not running.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <zmq.hpp>

#include "common/config/run_config.h"
#include "common/status.h"
#include "common/zmq/zap_handler.h"

namespace conveyor {

struct ServerSecurity {
  bool enabled = false;
  std::unique_ptr<ZapHandler> zap;                // destroy before the context
  std::function<void(zmq::socket_t&)> producers;  // applied to the producers' ROUTER
  std::function<void(zmq::socket_t&)> workers;    // applied to the workers' ROUTER
  std::string describe;                           // for the start-up line
};

Expected<ServerSecurity> setup_server_security(zmq::context_t& context,
                                               const RunConfig::Cluster& cluster);

// A client's CurveZMQ setup (worker, producer): its key-pair file and the
// coordinator's public key file; both empty = no encryption.
Expected<std::function<void(zmq::socket_t&)>> client_security(const std::string& client_key_file,
                                                              const std::string& server_key_file);

}  // namespace conveyor
