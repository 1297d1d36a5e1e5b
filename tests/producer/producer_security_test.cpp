#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tests/producer/producer_harness.h"

namespace conveyor {
namespace {

struct Z85KeyPair {
  std::string public_key;
  std::string secret_key;
};

Z85KeyPair make_key_pair() {
  char public_key[41];
  char secret_key[41];
  REQUIRE(zmq_curve_keypair(public_key, secret_key) == 0);
  return {public_key, secret_key};
}

}  // namespace

TEST_CASE("configure_socket: CurveZMQ on both sides; a wrong server key gets no reply") {
  if (!zmq_has("curve")) return;  // a libzmq built without CURVE: nothing to test
  const Z85KeyPair server_keys = make_key_pair();
  auto options = testing::local_server_options();
  options.configure_socket = [&](zmq::socket_t& socket) {
    socket.set(zmq::sockopt::curve_server, 1);
    socket.set(zmq::sockopt::curve_secretkey, server_keys.secret_key);
  };
  testing::ProducerHarness h(options);

  const Z85KeyPair client_keys = make_key_pair();
  auto curve_client = [&](const std::string& server_public_key) {
    auto o = h.client_options();
    o.timeout = std::chrono::milliseconds(200);
    o.attempts = 2;
    o.configure_socket = [&, server_public_key](zmq::socket_t& socket) {
      socket.set(zmq::sockopt::curve_serverkey, server_public_key);
      socket.set(zmq::sockopt::curve_publickey, client_keys.public_key);
      socket.set(zmq::sockopt::curve_secretkey, client_keys.secret_key);
    };
    return o;
  };
  ProducerClient good(h.context, curve_client(server_keys.public_key));
  CHECK(good.submit_chunk("job", 0, true, {"{}"}).ok());

  ProducerClient wrong(h.context, curve_client(make_key_pair().public_key));
  CHECK(wrong.status("job").status().code() == ErrorCode::kUnavailable);

  ProducerClient plain(h.context, [&] {
    auto o = h.client_options();
    o.timeout = std::chrono::milliseconds(200);
    o.attempts = 2;
    return o;
  }());
  CHECK(plain.status("job").status().code() == ErrorCode::kUnavailable);
  CHECK(h.service.stored_chunks() == 1);
}

TEST_CASE("configure_socket failing: start() reports it, nothing is bound") {
  auto options = testing::local_server_options();
  options.configure_socket = [](zmq::socket_t&) {
    fail(ErrorCode::kUnsupported, "this libzmq has no CURVE");
  };
  zmq::context_t context;
  testing::FakeJobService service;
  ProducerServer server(context, service, options);
  const Status started = server.start();
  CHECK(started.code() == ErrorCode::kUnsupported);
  CHECK(server.endpoint().empty());
}

}  // namespace conveyor
