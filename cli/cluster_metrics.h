// The metrics endpoints of `conveyor coordinator` and `conveyor worker` (--metrics-port):
// which counters each process exports and under which names. Values are read from the
// objects that already keep them, at scrape time.
#pragma once

#include <functional>
#include <memory>

#include "common/metrics/callback_collector.h"
#include "common/metrics/metrics_server.h"

namespace conveyor {
class ClusterManager;
class JobManager;
class ProducerServer;
class WorkerAgent;
class WorkerHub;
}  // namespace conveyor

namespace conveyor::cli {

// The coordinator's metrics. The objects must outlive every scrape: stop the server
// before any of them goes.
std::shared_ptr<CallbackCollector> coordinator_metrics(const ClusterManager& cluster,
                                                       const JobManager& jobs,
                                                       const ProducerServer& producers,
                                                       const WorkerHub& hub);

// Each job's request counts (conveyor_job_requests{job_id, kind}; not "job", which
// Prometheus gives every target); `jobs` must outlive
// every scrape.
std::shared_ptr<prometheus::Collectable> job_progress_metrics(const JobManager& jobs);

// The worker's metrics; `agent` must outlive every scrape.
std::shared_ptr<CallbackCollector> worker_metrics(const WorkerAgent& agent);

// Serves `metrics` on 0.0.0.0:`port`, /readyz from `ready`; throws Error (kUnavailable
// when the port is taken) with a message for the user.
std::unique_ptr<MetricsServer> start_metrics_or_throw(int port,
                                                      std::shared_ptr<CallbackCollector> metrics,
                                                      std::function<bool()> ready);

}  // namespace conveyor::cli
