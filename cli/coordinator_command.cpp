// `conveyor coordinator`: the cluster's coordinator process. Producers submit jobs to
// its producer socket; workers register on its worker socket and hold the pipeline
// stages it plans; its journal makes every accepted request survive a restart.
// SIGTERM (or SIGINT) stops it: no new submissions, the replicas hand their requests
// back, finished lines are synced; the journal has the rest for the next start.
#include <csignal>
#include <exception>

#include "cli/cluster_metrics.h"
#include "cli/commands.h"
#include "cli/engine_setup.h"
#include "cli/model_loading.h"
#include "common/log/log.h"
#include "common/zmq/zmq_version.h"
#include "coordinator/cluster/cluster_manager.h"
#include "coordinator/cluster/job_manager.h"
#include "coordinator/cluster/model_footprint.h"
#include "coordinator/cluster/server_security.h"
#include "coordinator/producer/producer_server.h"

namespace conveyor::cli {
namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) {
  g_stop = true;
}

struct CoordinatorOptions {
  std::string config_file;
  EngineFlags engine;
  std::optional<std::string> listen, worker_listen, journal, stages;
  std::optional<int> metrics_port;
  std::uint32_t drop_acks = 0;
};

int run_coordinator(const CoordinatorOptions& o) {
  if (Status s = check_zmq_library(); !s.ok()) throw Error(s.code(), s.message());
  RunConfig config = load_config_or_defaults(o.config_file);
  apply_engine_flags(o.engine, config);
  if (o.listen) config.cluster.listen = *o.listen;
  if (o.worker_listen) config.cluster.worker_listen = *o.worker_listen;
  if (o.journal) config.cluster.journal = *o.journal;
  if (o.metrics_port) config.cluster.metrics_port = *o.metrics_port;
  if (o.stages) {
    Expected<std::int64_t> stages = parse_stage_count(*o.stages);
    if (!stages.ok()) fail(ErrorCode::kInvalidArgument, "--stages: " + stages.status().message());
    config.cluster.stages = *stages;
  }
  if (Status s = validate_run_config(config); !s.ok()) throw Error(s.code(), s.message());
  // Workers build their caches as f32 (the assignment carries no element type), so a
  // config that asks for another is refused rather than silently ignored.
  if (config.kv.dtype != KvDtypeChoice::kAuto && config.kv.dtype != KvDtypeChoice::kF32) {
    fail(ErrorCode::kInvalidArgument,
         "kv dtype " + std::string(to_string(config.kv.dtype)) +
             ": cluster workers keep f32 K/V; use auto or f32 with the coordinator");
  }
  if (config.model.empty()) {
    fail(ErrorCode::kInvalidArgument, "no model: give --model or set `model` in the config");
  }

  // The coordinator reads the model for its tokenizer, chat template and shape; the
  // workers open the same model argument themselves for the weights.
  std::shared_ptr<ModelSource> source = open_model_or_throw(config.model);
  const ModelSpec& spec = source->spec();
  std::shared_ptr<const Tokenizer> tokenizer;
  std::optional<ChatTemplate> chat;
  if (source->tokenizer().has_value()) {
    tokenizer = std::make_shared<Tokenizer>(*source->tokenizer());
    if (Expected<ChatTemplate> c = chat_template_for(*source->tokenizer()); c.ok())
      chat = std::move(c).value();
  }
  const std::vector<std::string> names = served_model_names(config, *source);
  const KvPlan kv = plan_kv(config, spec, DType::kF32);

  IntakeOptions intake;
  intake.limits.max_line_bytes = config.limits.max_line_bytes;
  intake.limits.default_max_tokens = config.limits.default_max_tokens;
  intake.limits.max_n = config.limits.max_n;
  intake.model_names = names;
  intake.check_model_name = config.check_model_name;

  zmq::context_t context(2);
  Expected<ServerSecurity> security = setup_server_security(context, config.cluster);
  if (!security.ok()) throw Error(security.status().code(), security.status().message());

  Channel<EngineRequest> requests;  // bounded by the queue limit at submission
  JobManagerOptions jobs_options;
  jobs_options.dir = config.cluster.journal;
  jobs_options.queue_limit = config.cluster.queue_limit;
  jobs_options.meta.model = names.front();
  jobs_options.tokenizer = tokenizer;
  Expected<std::unique_ptr<JobManager>> opened =
      JobManager::open(jobs_options, RequestPreparer(intake, tokenizer, chat), requests);
  if (!opened.ok()) throw Error(opened.status().code(), opened.status().message());
  JobManager& jobs = **opened;

  WorkerHubOptions hub_options;
  hub_options.endpoint = config.cluster.worker_listen;
  hub_options.max_message_bytes = config.cluster.max_message_bytes;
  hub_options.configure_socket = security->workers;
  WorkerHub hub(context, hub_options);
  if (Status s = hub.bind(); !s.ok()) throw Error(s.code(), s.message());

  ProducerServerOptions server_options;
  server_options.endpoint = config.cluster.listen;
  server_options.max_message_bytes = static_cast<std::int64_t>(config.cluster.max_message_bytes);
  server_options.configure_socket = security->producers;
  server_options.drop_acks = o.drop_acks;
  ProducerServer server(context, jobs, server_options);
  if (Status s = server.start(); !s.ok()) throw Error(s.code(), s.message());

  ClusterOptions cluster;
  cluster.model = config.model;
  cluster.footprint = footprint_of(*source, kv.block_bytes * static_cast<std::uint64_t>(kv.blocks));
  cluster.stages = config.cluster.stages;
  cluster.max_replicas = config.cluster.max_replicas;
  cluster.kv = {kv.blocks, config.kv.block_size};
  cluster.kv.swap = {kv.host_swap_blocks, kv.disk_swap_blocks, config.kv.disk_dir};
  const auto ms = [](double seconds) {
    return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
  };
  cluster.heartbeat = ms(config.cluster.heartbeat_seconds);
  cluster.liveness = ms(config.cluster.liveness_seconds);
  cluster.plan_delay = ms(config.cluster.plan_delay_seconds);
  cluster.scheduler = scheduler_options(config, spec, tokenizer, kv);
  cluster.on_lease = [&jobs](std::uint64_t key, std::uint64_t epoch) { jobs.lease(key, epoch); };
  // Prometheus scrapes the objects below from the server's threads; /readyz says 200
  // while the hub serves workers. Started before the replicas, which register their
  // engines' metrics on it.
  std::atomic<bool> serving{false};
  std::unique_ptr<MetricsServer> metrics;
  if (config.cluster.metrics_port > 0) {
    metrics = start_metrics_or_throw(config.cluster.metrics_port, nullptr,
                                     [&serving] { return serving.load(); });
    cluster.metrics_registry = metrics->registry();
  }
  auto manager = std::make_unique<ClusterManager>(
      hub, cluster, requests, [&jobs](EngineResult r) { jobs.complete(std::move(r)); });
  std::atomic<bool> jobs_failed{false};
  jobs.start([&server](const std::string& job_id) { server.notify(job_id); },
             [&jobs_failed] {
               jobs_failed = true;
               g_stop = true;
             });

  spdlog::logger& out = logger("coordinator");
  const std::string stages =
      config.cluster.stages == 0 ? "auto" : std::to_string(config.cluster.stages);
  log::info(out,
            names.front() + " (" + source->format() + "), " + std::to_string(spec.num_layers) +
                " layers | producers on " + server.endpoint() + ", workers on " + hub.endpoint() +
                " | journal " + config.cluster.journal + " | stages " + stages + " | KV " +
                std::to_string(kv.blocks) + " blocks x " + std::to_string(config.kv.block_size) +
                " tokens per replica | " + security->describe,
            {{"model", names.front()},
             {"producers", server.endpoint()},
             {"workers", hub.endpoint()},
             {"journal", config.cluster.journal}});

  // However this function ends, the server stops before the objects it reads go.
  struct StopFirst {
    std::unique_ptr<MetricsServer>& server;
    ~StopFirst() { server.reset(); }
  } stop_metrics_first{metrics};
  if (metrics) {
    metrics->add_collectable(coordinator_metrics(*manager, jobs, server, hub));
    metrics->add_collectable(job_progress_metrics(jobs));
    log::info(out, "metrics on http://" + metrics->address() + "/metrics (probes /livez, /readyz)");
  }
  serving = true;

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  // Whatever ends the hub's loop (a signal, a failing disk, an exception), the
  // shutdown below runs: the actors end only once the request queue is closed.
  std::exception_ptr hub_failure;
  try {
    hub.run(*manager, g_stop, std::chrono::milliseconds(50));
  } catch (...) {
    hub_failure = std::current_exception();
  }
  serving = false;
  metrics.reset();  // its callbacks read the manager, which goes first below

  log::info(out, "stopping: handing running requests back to the journal");
  server.stop();
  requests.close();
  const ClusterStats stats = manager->stats();
  manager.reset();  // loses the pipelines; the actors hand back and end
  jobs.stop();
  const JobManagerCounters c = jobs.counters();
  log::info(out, "stopped: " + std::to_string(c.finished) + " lines written, " +
                     std::to_string(c.pending) + " requests pending in the journal, " +
                     std::to_string(stats.replicas_formed) + " replicas formed, " +
                     std::to_string(stats.replicas_lost) + " lost, " +
                     std::to_string(stats.requeued_requests) + " requests requeued, " +
                     std::to_string(stats.stale_results) + " stale results");
  if (hub_failure) std::rethrow_exception(hub_failure);
  if (jobs_failed) {
    fail(ErrorCode::kIo, "results could not be recorded in " + config.cluster.journal +
                             "; the journal keeps the unfinished requests for a restart");
  }
  return 0;
}

}  // namespace

void register_coordinator(CLI::App& app, CommandResult& result) {
  CLI::App* cmd = app.add_subcommand(
      "coordinator", "Run a cluster's coordinator: jobs from producers, stages on workers");
  auto o = std::make_shared<CoordinatorOptions>();
  cmd->add_option("-c,--config", o->config_file, "YAML config (see config/cluster.yaml)")
      ->envname("CONVEYOR_CONFIG");
  add_engine_flags(*cmd, o->engine, /*in_process_stages=*/false);
  // What belongs to a batch file or to the workers' own compute is not the
  // coordinator's: results go to producers, and each worker sets its threads.
  for (const char* name : {"--progress", "--errors", "--threads", "--backend"})
    cmd->remove_option(cmd->get_option(name));
  cmd->add_option("--listen", o->listen, "producers' endpoint, e.g. tcp://0.0.0.0:5555");
  cmd->add_option("--worker-listen", o->worker_listen,
                  "workers' endpoint, e.g. tcp://0.0.0.0:5556");
  cmd->add_option("--journal", o->journal, "journal directory");
  cmd->add_option("--metrics-port", o->metrics_port,
                  "serve Prometheus /metrics, /livez and /readyz on this port (0: off)");
  cmd->add_option("--stages", o->stages, "pipeline stages per replica: auto or a number");
  cmd->add_option("--fault-drop-acks", o->drop_acks,
                  "testing: withhold the first N submission ACKs")
      ->group("");
  cmd->callback([&result, o] { result = [o] { return run_coordinator(*o); }; });
}

}  // namespace conveyor::cli
