// CurveZMQ with the ZAP handler over real TCP sockets: listed keys get through, every
// other client (unknown key, other domain, no CURVE) gets nothing, and only one
// handler can serve a context.
#include "common/zmq/zap_handler.h"

#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "common/zmq/curve_keys.h"
#include "common/zmq/curve_socket.h"

namespace conveyor {
namespace {

using namespace std::chrono_literals;

// How long a refused client's message is waited for before concluding it never comes.
constexpr auto kRefusedWait = 300ms;
// A bound on an admitted round trip; only reached if the test is failing.
constexpr auto kAdmittedWait = 10s;

CurveKeyPair keys() {
  return generate_key_pair().value();
}

// A ROUTER on an ephemeral local port; `endpoint` is where it listens.
struct Server {
  zmq::socket_t socket;
  std::string endpoint;
};

Server bind_server(zmq::context_t& context, const std::function<void(zmq::socket_t&)>& secure) {
  Server server{zmq::socket_t(context, zmq::socket_type::router), ""};
  server.socket.set(zmq::sockopt::linger, 0);
  secure(server.socket);
  server.socket.bind("tcp://127.0.0.1:*");
  server.endpoint = server.socket.get(zmq::sockopt::last_endpoint);
  return server;
}

Server curve_server(zmq::context_t& context, const CurveKeyPair& server_keys,
                    const std::string& domain) {
  return bind_server(context, [&](zmq::socket_t& s) { make_curve_server(s, server_keys, domain); });
}

zmq::socket_t connect_client(zmq::context_t& context, const std::string& endpoint,
                             const std::function<void(zmq::socket_t&)>& secure) {
  zmq::socket_t client(context, zmq::socket_type::dealer);
  client.set(zmq::sockopt::linger, 0);
  secure(client);
  client.connect(endpoint);
  return client;
}

zmq::socket_t curve_client(zmq::context_t& context, const Server& server,
                           const CurveKeyPair& client_keys, const std::string& server_public) {
  return connect_client(context, server.endpoint, [&](zmq::socket_t& s) {
    make_curve_client(s, client_keys, server_public);
  });
}

// The client sends "ping"; the server, if it receives it within `wait`, answers
// "pong". Returns the User-Id the server saw (the ZAP handler's answer) when the
// client got its reply; nothing when the server never heard from the client.
std::optional<std::string> round_trip(zmq::socket_t& client, Server& server,
                                      std::chrono::milliseconds wait) {
  REQUIRE(client.send(zmq::str_buffer("ping"), zmq::send_flags::dontwait));
  server.socket.set(zmq::sockopt::rcvtimeo, static_cast<int>(wait.count()));
  zmq::message_t routing_id;
  zmq::message_t body;
  if (!server.socket.recv(routing_id)) return std::nullopt;
  REQUIRE(routing_id.more());
  REQUIRE(server.socket.recv(body));
  CHECK(body.to_string_view() == "ping");
  const std::string user_id = body.gets("User-Id");
  server.socket.send(routing_id, zmq::send_flags::sndmore);
  server.socket.send(zmq::str_buffer("pong"));
  client.set(zmq::sockopt::rcvtimeo, static_cast<int>(kAdmittedWait / 1ms));
  zmq::message_t reply;
  REQUIRE(client.recv(reply));
  CHECK(reply.to_string_view() == "pong");
  return user_id;
}

// Nothing reaches the client either: its receive times out.
void check_client_hears_nothing(zmq::socket_t& client) {
  client.set(zmq::sockopt::rcvtimeo, static_cast<int>(kRefusedWait / 1ms));
  zmq::message_t reply;
  CHECK_FALSE(client.recv(reply).has_value());
}

// The handler answers on its own thread; a refusal is counted just before the reply.
bool eventually(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + kAdmittedWait;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

std::unique_ptr<ZapHandler> start_handler(zmq::context_t& context,
                                          ZapHandler::AllowedKeys allowed) {
  Expected<std::unique_ptr<ZapHandler>> handler = ZapHandler::start(context, std::move(allowed));
  INFO(handler.status().to_string());
  REQUIRE(handler.ok());
  return std::move(handler).value();
}

TEST_CASE("a listed key is admitted, an unknown key and a plain client are not") {
  zmq::context_t context;
  const CurveKeyPair server_keys = keys();
  const CurveKeyPair producer = keys();
  const CurveKeyPair stranger = keys();
  auto handler = start_handler(context, {{"producers", {producer.public_key}}});
  Server server = curve_server(context, server_keys, "producers");

  SUBCASE("listed key") {
    zmq::socket_t client = curve_client(context, server, producer, server_keys.public_key);
    const std::optional<std::string> user_id = round_trip(client, server, kAdmittedWait);
    REQUIRE(user_id.has_value());
    CHECK(*user_id == producer.public_key);
    CHECK(handler->accepted("producers") == 1);
    CHECK(handler->rejected("producers") == 0);
  }
  SUBCASE("unknown key") {
    zmq::socket_t client = curve_client(context, server, stranger, server_keys.public_key);
    CHECK_FALSE(round_trip(client, server, kRefusedWait).has_value());
    check_client_hears_nothing(client);
    CHECK(eventually([&] { return handler->rejected("producers") >= 1; }));
    CHECK(handler->accepted("producers") == 0);
  }
  SUBCASE("plain client, no CURVE") {
    zmq::socket_t client = connect_client(context, server.endpoint, [](zmq::socket_t&) {});
    CHECK_FALSE(round_trip(client, server, kRefusedWait).has_value());
    check_client_hears_nothing(client);
    CHECK(handler->accepted("producers") == 0);
  }
  SUBCASE("a client that knows the wrong server key") {
    zmq::socket_t client = curve_client(context, server, producer, stranger.public_key);
    CHECK_FALSE(round_trip(client, server, kRefusedWait).has_value());
    CHECK(handler->accepted("producers") == 0);
  }
  CHECK(handler->running());
}

TEST_CASE("domains are separate: a producer key does not open the workers socket") {
  zmq::context_t context;
  const CurveKeyPair server_keys = keys();
  const CurveKeyPair producer = keys();
  const CurveKeyPair worker = keys();
  auto handler = start_handler(
      context, {{"producers", {producer.public_key}}, {"workers", {worker.public_key}}});
  Server producers = curve_server(context, server_keys, "producers");
  Server workers = curve_server(context, server_keys, "workers");

  zmq::socket_t intruder = curve_client(context, workers, producer, server_keys.public_key);
  CHECK_FALSE(round_trip(intruder, workers, kRefusedWait).has_value());
  CHECK(eventually([&] { return handler->rejected("workers") >= 1; }));

  zmq::socket_t worker_client = curve_client(context, workers, worker, server_keys.public_key);
  CHECK(round_trip(worker_client, workers, kAdmittedWait) == worker.public_key);
  zmq::socket_t producer_client =
      curve_client(context, producers, producer, server_keys.public_key);
  CHECK(round_trip(producer_client, producers, kAdmittedWait) == producer.public_key);

  CHECK(handler->accepted("workers") == 1);
  CHECK(handler->accepted("producers") == 1);
  CHECK(handler->rejected("producers") == 0);
}

TEST_CASE("a mechanism other than CURVE is refused by the handler") {
  zmq::context_t context;
  const CurveKeyPair producer = keys();
  auto handler = start_handler(context, {{"producers", {producer.public_key}}});
  // A NULL-mechanism server with a ZAP domain consults the handler, which says no.
  Server server =
      bind_server(context, [](zmq::socket_t& s) { s.set(zmq::sockopt::zap_domain, "producers"); });
  zmq::socket_t client = connect_client(context, server.endpoint, [](zmq::socket_t&) {});
  CHECK_FALSE(round_trip(client, server, kRefusedWait).has_value());
  CHECK(eventually([&] { return handler->rejected("producers") >= 1; }));
  CHECK(handler->accepted("producers") == 0);
}

TEST_CASE("a domain without allowed keys admits nobody") {
  zmq::context_t context;
  const CurveKeyPair server_keys = keys();
  const CurveKeyPair producer = keys();
  auto handler = start_handler(context, {{"producers", {producer.public_key}}});
  Server server = curve_server(context, server_keys, "elsewhere");
  zmq::socket_t client = curve_client(context, server, producer, server_keys.public_key);
  CHECK_FALSE(round_trip(client, server, kRefusedWait).has_value());
  CHECK(eventually([&] { return handler->rejected_other() >= 1; }));
  CHECK(handler->accepted("producers") == 0);
  CHECK(handler->rejected("elsewhere") == 0);
}

TEST_CASE("only one ZAP handler serves a context") {
  zmq::context_t context;
  const CurveKeyPair producer = keys();
  {
    auto first = start_handler(context, {{"producers", {producer.public_key}}});
    const Expected<std::unique_ptr<ZapHandler>> second =
        ZapHandler::start(context, {{"producers", {producer.public_key}}});
    CHECK(second.status().code() == ErrorCode::kUnavailable);
    CHECK(second.status().message().find("already bound") != std::string::npos);
  }
  // Another context has its own endpoint.
  zmq::context_t other;
  CHECK(ZapHandler::start(other, {{"producers", {producer.public_key}}}).ok());
}

TEST_CASE("a ZAP handler refuses bad configuration") {
  zmq::context_t context;
  CHECK(ZapHandler::start(context, {{"producers", {"not-a-key"}}}).status().code() ==
        ErrorCode::kInvalidArgument);
  CHECK(ZapHandler::start(context, {{"", {keys().public_key}}}).status().code() ==
        ErrorCode::kInvalidArgument);
  // Nothing was bound by the refused starts.
  CHECK(ZapHandler::start(context, {}).ok());
}

TEST_CASE("a ZAP handler stops cleanly, also after its context was shut down") {
  zmq::context_t context;
  auto handler = start_handler(context, {});
  CHECK(handler->running());
  context.shutdown();
  CHECK(eventually([&] { return !handler->running(); }));
  handler.reset();  // returns: the thread has stopped, the sockets close
}

TEST_CASE("CURVE socket setup refuses keys libzmq would not take") {
  zmq::context_t context;
  zmq::socket_t socket(context, zmq::socket_type::router);
  CurveKeyPair bad = keys();
  bad.secret_key = "short";
  CHECK_THROWS_AS(make_curve_server(socket, bad, "producers"), Error);
  CHECK_THROWS_AS(make_curve_server(socket, keys(), ""), Error);
  CHECK_THROWS_AS(make_curve_client(socket, keys(), "short"), Error);
}

}  // namespace
}  // namespace conveyor
