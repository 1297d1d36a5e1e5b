// MetricsServer: the HTTP endpoint Prometheus scrapes (prometheus-cpp's Exposer on
// CivetWeb). It serves
//   /metrics  the registry() and every collectable added, in the text format;
//   /livez    200 while the process serves HTTP at all (a liveness probe);
//   /readyz   200 or 503, as the owner's readiness function says (a readiness probe).
// prometheus-cpp 1.0's Exposer offers no public way to add plain HTTP handlers, so the
// probes are answered from CivetWeb's begin_request hook, which the Exposer passes
// through to CivetWeb; /metrics is unaffected by it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/registry.h>

#include "common/status.h"

namespace prometheus {
class Exposer;
}

namespace conveyor {

class MetricsServer {
 public:
  // Listens on `bind_address`, "HOST:PORT" with HOST an IP address ("0.0.0.0:9090";
  // CivetWeb resolves no names; port 0 picks a free port, see port()). kInvalidArgument for an
  // address that is not HOST:PORT; kUnavailable when the server cannot listen there (the port is
  // taken, the address is not local).
  static Expected<std::unique_ptr<MetricsServer>> start(const std::string& bind_address);
  // Stops serving (in milliseconds: see AcceptLoopWaker); a scrape in progress finishes
  // first.
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // For prometheus-cpp's own metric types (counters, histograms, ...).
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }
  // Serves `collectable` on /metrics too; the server keeps it alive. Its Collect() runs
  // on the server's threads, so it must be thread-safe.
  // Called from the owner's thread.
  void add_collectable(std::shared_ptr<prometheus::Collectable> collectable);
  // /readyz answers 200 while `ready()` is true, 503 otherwise (and when it throws).
  // Without one, /readyz answers 200. Called on the server's threads.
  void set_readiness(std::function<bool()> ready);

  int port() const { return port_; }                       // the port listened on
  const std::string& address() const { return address_; }  // "HOST:PORT", as listened on

  struct Probes;  // /livez and /readyz state, shared with the CivetWeb hook

 private:
  MetricsServer() = default;

  std::shared_ptr<Probes> probes_;
  const void* context_ = nullptr;  // CivetWeb's context: the key of the hook's lookup
  std::shared_ptr<prometheus::Registry> registry_;
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
  std::string address_;
};

}  // namespace conveyor
