// MetricsServer over real HTTP: /metrics carries the callback metrics with their HELP
// and TYPE lines and fresh values at each scrape, prometheus-cpp's own registry too;
// /livez and /readyz answer as the owner says; a taken port or a bad address is an
// error that says so.
#include "common/metrics/metrics_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include <prometheus/counter.h>

#include "common/metrics/callback_collector.h"
#include "tests/metrics/http_get.h"

namespace conveyor {
namespace {

using testing::http_get;

std::unique_ptr<MetricsServer> start_local() {
  Expected<std::unique_ptr<MetricsServer>> server = MetricsServer::start("127.0.0.1:0");
  REQUIRE_MESSAGE(server.ok(), server.status().to_string());
  REQUIRE((*server)->port() > 0);
  return std::move(server).value();
}

// A socket listening on a free loopback port, held by the test (not by CivetWeb).
struct HeldPort {
  int fd = -1;
  int port = 0;
  HeldPort() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0);
    REQUIRE(::listen(fd, 1) == 0);
    socklen_t length = sizeof(address);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    port = ntohs(address.sin_port);
  }
  ~HeldPort() { ::close(fd); }
};

TEST_CASE("/metrics serves the callback metrics, read afresh at every scrape") {
  std::unique_ptr<MetricsServer> server = start_local();
  CHECK(server->address() == "127.0.0.1:" + std::to_string(server->port()));

  auto collector = std::make_shared<CallbackCollector>();
  std::atomic<int> pending{4};
  std::atomic<int> fsyncs{10};
  REQUIRE(collector
              ->add_gauge("conveyor_requests_pending", "Requests accepted, not finished",
                          [&] { return static_cast<double>(pending.load()); })
              .ok());
  REQUIRE(collector
              ->add_counter("conveyor_journal_fsyncs_total", "Journal group commits",
                            [&] { return static_cast<double>(fsyncs.load()); })
              .ok());
  REQUIRE(
      collector
          ->add_gauge("conveyor_journal_fsync_last_seconds", "Last fsync time", [] { return 0.25; })
          .ok());
  server->add_collectable(collector);
  prometheus::BuildCounter()
      .Name("conveyor_registry_things_total")
      .Help("From the registry")
      .Register(*server->registry())
      .Add({})
      .Increment(3);

  testing::HttpReply first = http_get(server->port(), "/metrics");
  REQUIRE(first.status == 200);
  const std::string& a = first.body;
  CHECK(a.find("# HELP conveyor_requests_pending Requests accepted, not finished\n") !=
        std::string::npos);
  CHECK(a.find("# TYPE conveyor_requests_pending gauge\n") != std::string::npos);
  CHECK(a.find("\nconveyor_requests_pending 4\n") != std::string::npos);
  CHECK(a.find("# TYPE conveyor_journal_fsyncs_total counter\n") != std::string::npos);
  CHECK(a.find("\nconveyor_journal_fsyncs_total 10\n") != std::string::npos);
  CHECK(a.find("\nconveyor_journal_fsync_last_seconds 0.25\n") != std::string::npos);
  CHECK(a.find("# TYPE conveyor_registry_things_total counter\n") != std::string::npos);
  CHECK(a.find("\nconveyor_registry_things_total 3\n") != std::string::npos);

  pending = 1;
  fsyncs = 12;
  testing::HttpReply second = http_get(server->port(), "/metrics");
  REQUIRE(second.status == 200);
  CHECK(second.body.find("\nconveyor_requests_pending 1\n") != std::string::npos);
  CHECK(second.body.find("\nconveyor_journal_fsyncs_total 12\n") != std::string::npos);
}

TEST_CASE("/livez answers 200; /readyz follows the readiness function") {
  std::unique_ptr<MetricsServer> server = start_local();
  // No readiness function: ready.
  CHECK(http_get(server->port(), "/livez").status == 200);
  CHECK(http_get(server->port(), "/livez").body == "ok\n");
  CHECK(http_get(server->port(), "/readyz").status == 200);

  std::atomic<bool> ready{false};
  server->set_readiness([&] { return ready.load(); });
  CHECK(http_get(server->port(), "/readyz").status == 503);
  CHECK(http_get(server->port(), "/livez").status == 200);  // alive while not ready
  ready = true;
  const testing::HttpReply yes = http_get(server->port(), "/readyz");
  CHECK(yes.status == 200);
  CHECK(yes.body == "ok\n");

  server->set_readiness([]() -> bool { throw std::runtime_error("cannot tell"); });
  CHECK(http_get(server->port(), "/readyz").status == 503);

  CHECK(http_get(server->port(), "/nothing-here").status == 404);
}

TEST_CASE("two servers answer their own probes") {
  std::unique_ptr<MetricsServer> a = start_local();
  std::unique_ptr<MetricsServer> b = start_local();
  REQUIRE(a->port() != b->port());
  a->set_readiness([] { return false; });
  b->set_readiness([] { return true; });
  CHECK(http_get(a->port(), "/readyz").status == 503);
  CHECK(http_get(b->port(), "/readyz").status == 200);
  const int port_of_a = a->port();
  a.reset();
  CHECK(http_get(port_of_a, "/livez").status == 0);  // stopped: nothing listens
  CHECK(http_get(b->port(), "/readyz").status == 200);
}

TEST_CASE("a server on the wildcard address answers on loopback") {
  Expected<std::unique_ptr<MetricsServer>> server = MetricsServer::start("0.0.0.0:0");
  REQUIRE_MESSAGE(server.ok(), server.status().to_string());
  CHECK((*server)->address() == "0.0.0.0:" + std::to_string((*server)->port()));
  CHECK(http_get((*server)->port(), "/livez").status == 200);
}

TEST_CASE("scrapes run safely while metrics are being added") {
  std::unique_ptr<MetricsServer> server = start_local();
  auto collector = std::make_shared<CallbackCollector>();
  server->add_collectable(collector);
  std::atomic<int> bad_scrapes{0};
  std::vector<std::thread> scrapers;
  for (int t = 0; t < 3; ++t) {
    scrapers.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        const testing::HttpReply reply = http_get(server->port(), "/metrics");
        if (reply.status != 200) ++bad_scrapes;
      }
    });
  }
  for (int i = 0; i < 50; ++i) {
    REQUIRE(collector->add_gauge("conveyor_g" + std::to_string(i), "h", [i] { return i; }).ok());
  }
  for (std::thread& t : scrapers)
    t.join();
  CHECK(bad_scrapes == 0);
  const std::string body = http_get(server->port(), "/metrics").body;
  CHECK(body.find("\nconveyor_g0 0\n") != std::string::npos);
  CHECK(body.find("\nconveyor_g49 49\n") != std::string::npos);
}

TEST_CASE("a port that is taken is kUnavailable, naming the address") {
  HeldPort held;
  const std::string address = "127.0.0.1:" + std::to_string(held.port);
  Expected<std::unique_ptr<MetricsServer>> server = MetricsServer::start(address);
  REQUIRE_FALSE(server.ok());
  CHECK(server.status().code() == ErrorCode::kUnavailable);
  CHECK(server.status().message().find(address) != std::string::npos);

  // A port held by another metrics server: the same.
  std::unique_ptr<MetricsServer> first = start_local();
  const std::string taken = "127.0.0.1:" + std::to_string(first->port());
  Expected<std::unique_ptr<MetricsServer>> second = MetricsServer::start(taken);
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().code() == ErrorCode::kUnavailable);
  CHECK(http_get(first->port(), "/livez").status == 200);  // the first one is unharmed
}

TEST_CASE("an address that is not HOST:PORT is kInvalidArgument") {
  for (const char* bad : {"", "9090", ":9090", "0.0.0.0:", "0.0.0.0:http", "0.0.0.0:65536",
                          "0.0.0.0:-1", "0.0.0.0:90 "}) {
    CAPTURE(bad);
    Expected<std::unique_ptr<MetricsServer>> server = MetricsServer::start(bad);
    REQUIRE_FALSE(server.ok());
    CHECK(server.status().code() == ErrorCode::kInvalidArgument);
  }
  // Well-formed, but not an address of this host.
  Expected<std::unique_ptr<MetricsServer>> foreign = MetricsServer::start("192.0.2.1:0");
  REQUIRE_FALSE(foreign.ok());
  CHECK(foreign.status().code() == ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace conveyor
