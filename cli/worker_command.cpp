// `conveyor worker`: a worker process of a cluster. It registers with the
// coordinator, holds the pipeline stage it is assigned and runs the steps it is sent.
// SIGTERM (or SIGINT) makes it hand its stage back and exit.
#include <chrono>
#include <csignal>

#include "cli/cluster_metrics.h"
#include "cli/commands.h"
#include "cli/stage_metrics.h"
#include "common/config/size_parse.h"
#include "common/log/log.h"
#include "common/stall_limit.h"
#include "common/zmq/zmq_version.h"
#include "coordinator/cluster/server_security.h"
#include "worker/node/worker_agent.h"

namespace conveyor::cli {
namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) {
  g_stop = true;
}

struct WorkerOptions {
  std::string coordinator;
  std::string device = "cpu";
  std::string memory;
  std::string name;
  std::string host;
  int threads = 0;
  int metrics_port = 0;
  std::string client_key, server_key;
};

// Ready: registered, and the stage (if any) making progress: a step waiting past the
// stall limit (common/stall_limit.h) means a wedged executor, and the orchestrator
// should restart the worker rather than wait on it.
bool worker_ready(const WorkerAgentCounters& c) {
  if (!c.registered) return false;
  const StageStats& stage = c.stage;
  if (stage.in_flight == 0) return true;
  // From the stage's progress time, not its stalled_seconds: the agent refreshes these
  // statistics between its other work, and a blocked agent must not look fresh.
  const double stalled =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - stage.progress_time).count();
  return stalled <= stall_limit_seconds(stage.steps, stage.compute_seconds);
}

int run_worker(const WorkerOptions& o) {
  if (Status s = check_zmq_library(); !s.ok()) throw Error(s.code(), s.message());
  WorkerAgentOptions options;
  options.backend = parse_device(o.device);
  if (options.backend.kind == BackendKind::kAuto)
    options.backend.kind = resolve(BackendKind::kAuto);
  options.coordinator = o.coordinator;
  options.name = o.name;
  options.host = o.host;
  options.threads = o.threads;
  if (!o.memory.empty()) {
    Expected<std::uint64_t> bytes = parse_size(o.memory);
    if (!bytes.ok()) fail(ErrorCode::kInvalidArgument, "--memory: " + bytes.status().message());
    options.memory_bytes = *bytes;
  }
  Expected<std::function<void(zmq::socket_t&)>> security =
      client_security(o.client_key, o.server_key);
  if (!security.ok()) throw Error(security.status().code(), security.status().message());
  options.configure_socket = *security;
  options.stop = &g_stop;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  WorkerAgent agent(options);
  std::unique_ptr<MetricsServer> metrics;  // stops before the agent it reads
  if (o.metrics_port > 0) {
    metrics = start_metrics_or_throw(o.metrics_port, worker_metrics(agent),
                                     [&agent] { return worker_ready(agent.counters()); });
    metrics->add_collectable(stage_metrics([&agent] {
      return std::vector<std::pair<std::map<std::string, std::string>, StageStats>>{
          {{}, agent.counters().stage}};
    }));
    log::info(logger("worker"),
              "metrics on http://" + metrics->address() + "/metrics (probes /livez, /readyz)");
  }
  return agent.run();
}

}  // namespace

void register_worker(CLI::App& app, CommandResult& result) {
  CLI::App* cmd = app.add_subcommand(
      "worker", "Run a cluster worker: holds a pipeline stage for a coordinator");
  auto o = std::make_shared<WorkerOptions>();
  cmd->add_option("--coordinator", o->coordinator,
                  "the coordinator's worker endpoint, tcp://HOST:PORT")
      ->required()
      ->envname("CONVEYOR_COORDINATOR");
  cmd->add_option("--device", o->device, "cpu, cuda:N (a GPU), or auto (a GPU where one answers)");
  cmd->add_option("--memory", o->memory,
                  "memory for weights and K/V, e.g. 4GiB (default: 80% of RAM)");
  cmd->add_option("-t,--threads", o->threads, "CPU threads (default: every core)");
  cmd->add_option("--name", o->name, "worker name (default: hostname-pid)");
  cmd->add_option(
      "--host", o->host,
      "address other workers reach this one at (default: the one facing the coordinator)");
  cmd->add_option("--metrics-port", o->metrics_port,
                  "serve Prometheus /metrics, /livez and /readyz on this port (0: off)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--client-key", o->client_key, "CurveZMQ: this worker's key-pair file");
  cmd->add_option("--server-key", o->server_key, "CurveZMQ: the coordinator's public key file");
  cmd->callback([&result, o] { result = [o] { return run_worker(*o); }; });
}

}  // namespace conveyor::cli
