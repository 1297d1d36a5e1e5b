#include "common/metrics/metrics_server.h"

#include <CivetServer.h>
#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <prometheus/exposer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>

namespace conveyor {

struct MetricsServer::Probes {
  std::mutex mutex;
  std::function<bool()> ready;  // empty: always ready

  bool is_ready() {
    std::lock_guard lock(mutex);
    if (!ready) return true;
    try {
      return ready();
    } catch (...) {
      return false;
    }
  }
};

namespace {

// CivetWeb's hooks are plain C function pointers without a user pointer of their own
// (the Exposer's CivetServer owns the context's user data), so they find the probes of
// the server that received the request by its CivetWeb context.
std::mutex g_probes_mutex;
std::map<const mg_context*, std::shared_ptr<MetricsServer::Probes>>& probes_by_context() {
  static auto* map = new std::map<const mg_context*, std::shared_ptr<MetricsServer::Probes>>();
  return *map;  // never destroyed: a server thread may still look during exit
}

std::shared_ptr<MetricsServer::Probes> probes_of(const mg_context* context) {
  std::lock_guard lock(g_probes_mutex);
  auto it = probes_by_context().find(context);
  return it == probes_by_context().end() ? nullptr : it->second;
}

void forget_context(const mg_context* context) {
  std::lock_guard lock(g_probes_mutex);
  probes_by_context().erase(context);
}

// What the thread constructing an Exposer learns from CivetWeb's start-up hooks, which
// run on that thread inside the constructor.
struct Starting {
  std::shared_ptr<MetricsServer::Probes> probes;
  const mg_context* context = nullptr;
  std::string log;  // CivetWeb's own words on a failure ("cannot bind to ...")
};
thread_local Starting* t_starting = nullptr;

void on_init_context(const mg_context* context) {
  if (t_starting == nullptr) return;
  t_starting->context = context;
  std::lock_guard lock(g_probes_mutex);
  probes_by_context()[context] = t_starting->probes;
}

int on_log_message(const mg_connection*, const char* message) {
  if (t_starting != nullptr && message != nullptr) {
    if (!t_starting->log.empty()) t_starting->log += "; ";
    t_starting->log += message;
  }
  return 0;  // CivetWeb logs as configured (by default: nowhere)
}

int answer(mg_connection* conn, const mg_request_info& info, bool ok) {
  if (!ok) {
    mg_send_http_error(conn, 503, "%s", "not ready\n");
    return 503;
  }
  static constexpr std::string_view kBody = "ok\n";
  mg_send_http_ok(conn, "text/plain; charset=utf-8", static_cast<long long>(kBody.size()));
  if (std::string_view(info.request_method) != "HEAD") mg_write(conn, kBody.data(), kBody.size());
  return 200;
}

// Answers /livez and /readyz; anything else goes on to the Exposer's handlers.
int on_begin_request(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  if (info == nullptr || info->local_uri == nullptr || info->request_method == nullptr) return 0;
  const std::string_view uri = info->local_uri;
  const bool live = uri == "/livez";
  if (!live && uri != "/readyz") return 0;
  std::shared_ptr<MetricsServer::Probes> probes = probes_of(mg_get_context(conn));
  if (probes == nullptr) return 0;  // still starting: CivetWeb answers 404
  return answer(conn, *info, live || probes->is_ready());
}

// "HOST:PORT" with a non-empty host and a port in 0..65535.
Expected<int> parse_port(const std::string& bind_address) {
  const std::size_t colon = bind_address.rfind(':');
  const auto bad = [&] {
    return Status(ErrorCode::kInvalidArgument,
                  "metrics address \"" + bind_address + "\" is not HOST:PORT (e.g. 0.0.0.0:9090)");
  };
  if (colon == std::string::npos || colon == 0 || colon + 1 == bind_address.size()) return bad();
  const char* begin = bind_address.data() + colon + 1;
  const char* end = bind_address.data() + bind_address.size();
  int port = -1;
  const auto [ptr, ec] = std::from_chars(begin, end, port);
  if (ec != std::errc() || ptr != end || port < 0 || port > 65535) return bad();
  return port;
}

// Where a connection reaches the server's IPv4 listening socket: the bound address, or
// loopback for the wildcard. Nothing for other addresses (IPv6).
std::optional<sockaddr_in> reachable_address(const std::string& address, int port) {
  std::string host = address.substr(0, address.rfind(':'));
  if (host == "0.0.0.0") host = "127.0.0.1";
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &to.sin_addr) != 1) return std::nullopt;
  return to;
}

// CivetWeb's accept loop sees a stop request only when its poll() returns: every two
// seconds, or at once on a new connection. Connecting until the stop completes makes a
// stop take milliseconds instead of seconds; where no connection gets through, the stop
// merely takes its two seconds.
class AcceptLoopWaker {
 public:
  explicit AcceptLoopWaker(std::optional<sockaddr_in> to) {
    if (!to) return;
    thread_ = std::thread([this, address = *to] {
      while (!done_.load()) {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) return;
        (void)::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address));
        ::close(fd);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
  }
  ~AcceptLoopWaker() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
  }
  AcceptLoopWaker(const AcceptLoopWaker&) = delete;
  AcceptLoopWaker& operator=(const AcceptLoopWaker&) = delete;

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace

Expected<std::unique_ptr<MetricsServer>> MetricsServer::start(const std::string& bind_address) {
  Expected<int> requested = parse_port(bind_address);
  if (!requested.ok()) return requested.status();

  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->probes_ = std::make_shared<Probes>();
  server->registry_ = std::make_shared<prometheus::Registry>();

  CivetCallbacks callbacks;
  callbacks.begin_request = on_begin_request;
  callbacks.init_context = on_init_context;
  callbacks.log_message = on_log_message;
  Starting starting{server->probes_, nullptr, {}};
  t_starting = &starting;
  try {
    // Two threads: scrapes and probes are rare and short.
    server->exposer_ = std::make_unique<prometheus::Exposer>(bind_address, 2, &callbacks);
  } catch (const std::exception& e) {
    t_starting = nullptr;
    if (starting.context != nullptr) forget_context(starting.context);
    return Status(ErrorCode::kUnavailable, "metrics server cannot listen on " + bind_address +
                                               ": " +
                                               (starting.log.empty() ? e.what() : starting.log));
  }
  t_starting = nullptr;
  server->context_ = starting.context;
  server->exposer_->RegisterCollectable(server->registry_);

  const std::vector<int> ports = server->exposer_->GetListeningPorts();
  server->port_ = ports.empty() ? *requested : ports.front();
  server->address_ =
      bind_address.substr(0, bind_address.rfind(':') + 1) + std::to_string(server->port_);
  return server;
}

MetricsServer::~MetricsServer() {
  {
    AcceptLoopWaker waker(reachable_address(address_, port_));
    exposer_.reset();  // joins the server's threads: no hook runs after this
  }
  if (context_ != nullptr) forget_context(static_cast<const mg_context*>(context_));
}

void MetricsServer::add_collectable(std::shared_ptr<prometheus::Collectable> collectable) {
  exposer_->RegisterCollectable(collectable);
  collectables_.push_back(std::move(collectable));
}

void MetricsServer::set_readiness(std::function<bool()> ready) {
  std::lock_guard lock(probes_->mutex);
  probes_->ready = std::move(ready);
}

}  // namespace conveyor
