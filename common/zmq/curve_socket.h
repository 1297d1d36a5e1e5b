// Turning a ZeroMQ socket into a CurveZMQ server or client. Call before bind/connect.
//
// A CURVE server authenticates clients only through a ZAP handler (ZapHandler) on the
// same context: without one, any client that knows the server's public key gets in.
// Start the handler before binding, and refuse to run when it cannot start.
#pragma once

#include <string>

#include <zmq.hpp>

#include "common/zmq/curve_keys.h"

namespace conveyor {

// Sets ZMQ_CURVE_SERVER, the server's secret key and ZMQ_ZAP_DOMAIN (the domain the
// ZAP handler looks the client's key up in). Also ZMQ_ZAP_ENFORCE_DOMAIN where the
// libzmq has it (a draft option in 4.3): a missing handler then fails the handshake.
// Throws Error(kInvalidArgument) for a key libzmq refuses, kUnsupported without CURVE.
void make_curve_server(zmq::socket_t& socket, const CurveKeyPair& server,
                       const std::string& zap_domain);

// Sets the client's own key pair and the server's public key (Z85). Throws as above.
void make_curve_client(zmq::socket_t& socket, const CurveKeyPair& client,
                       const std::string& server_public_key);

}  // namespace conveyor
