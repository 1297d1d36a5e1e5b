#include "cli/cluster_metrics.h"

#include <string>
#include <utility>

#include "coordinator/cluster/cluster_manager.h"
#include "coordinator/cluster/job_manager.h"
#include "coordinator/cluster/worker_hub.h"
#include "coordinator/producer/producer_server.h"
#include "worker/node/worker_agent.h"

namespace conveyor::cli {
namespace {

// The names are fixed here, so a refusal is a bug in this file: it stops the process.
void check(const Status& s) {
  if (!s.ok()) throw Error(ErrorCode::kInternal, s.message());
}

template <typename T>
double as_double(T value) {
  return static_cast<double>(value);
}

// conveyor_job_requests{job_id, kind="total"|"completed"|"failed"}: one series per job
// the coordinator holds, read at scrape time, so a released job's series are gone
// from the next scrape on.
class JobProgressCollector final : public prometheus::Collectable {
 public:
  explicit JobProgressCollector(const JobManager& jobs) : jobs_(jobs) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    prometheus::MetricFamily family;
    family.name = "conveyor_job_requests";
    family.help = "Requests of each job held: total lines, completed, failed";
    family.type = prometheus::MetricType::Gauge;
    for (const JobProgress& job : jobs_.progress()) {
      const std::pair<const char*, std::int64_t> counts[] = {
          {"total", job.total}, {"completed", job.completed}, {"failed", job.failed}};
      for (const auto& [kind, value] : counts) {
        prometheus::ClientMetric metric;
        metric.label = {{"job_id", job.job_id}, {"kind", kind}};
        metric.gauge.value = static_cast<double>(value);
        family.metric.push_back(std::move(metric));
      }
    }
    return {std::move(family)};
  }

 private:
  const JobManager& jobs_;
};

}  // namespace

std::shared_ptr<prometheus::Collectable> job_progress_metrics(const JobManager& jobs) {
  return std::make_shared<JobProgressCollector>(jobs);
}

std::shared_ptr<CallbackCollector> coordinator_metrics(const ClusterManager& cluster,
                                                       const JobManager& jobs,
                                                       const ProducerServer& producers,
                                                       const WorkerHub& hub) {
  auto m = std::make_shared<CallbackCollector>();
  const ClusterManager* c = &cluster;
  const JobManager* j = &jobs;
  const ProducerServer* p = &producers;
  const WorkerHub* h = &hub;

  // Membership and replicas.
  check(m->add_gauge("conveyor_cluster_workers", "Workers registered with the coordinator",
                     [c] { return as_double(c->stats().workers); }));
  check(m->add_gauge("conveyor_cluster_replicas_live", "Pipeline replicas serving requests",
                     [c] { return as_double(c->stats().live_replicas); }));
  check(m->add_counter("conveyor_cluster_replicas_formed_total", "Pipeline replicas formed",
                       [c] { return as_double(c->stats().replicas_formed); }));
  check(m->add_counter("conveyor_cluster_replicas_lost_total",
                       "Pipeline replicas lost to a failed or departed worker",
                       [c] { return as_double(c->stats().replicas_lost); }));
  check(m->add_counter("conveyor_cluster_workers_lost_total",
                       "Workers dropped after missing heartbeats or leaving",
                       [c] { return as_double(c->stats().workers_lost); }));
  check(m->add_counter("conveyor_cluster_requeued_requests_total",
                       "Requests queued again after their replica was lost",
                       [c] { return as_double(c->stats().requeued_requests); }));
  check(m->add_counter("conveyor_cluster_stale_results_total",
                       "Step results that arrived for a replica no longer held",
                       [c] { return as_double(c->stats().stale_results); }));

  // Jobs and requests.
  check(m->add_gauge("conveyor_jobs", "Jobs known to the coordinator",
                     [j] { return as_double(j->counters().jobs); }));
  check(m->add_gauge("conveyor_requests_pending", "Requests accepted and not finished",
                     [j] { return as_double(j->counters().pending); }));
  check(m->add_counter("conveyor_requests_finished_total",
                       "Result and error lines written since start",
                       [j] { return as_double(j->counters().finished); }));
  check(m->add_counter("conveyor_requests_resumed_total",
                       "Requests from the journal queued again at start",
                       [j] { return as_double(j->counters().resumed); }));
  check(m->add_counter("conveyor_requests_leased_total",
                       "Requests taken by a replica (again for each requeue)",
                       [j] { return as_double(j->counters().leases); }));
  check(m->add_counter("conveyor_chunks_accepted_total", "Submitted chunks accepted",
                       [j] { return as_double(j->counters().accepted_chunks); }));
  check(m->add_counter("conveyor_chunks_duplicate_total",
                       "Submitted chunks already accepted (producer retries)",
                       [j] { return as_double(j->counters().duplicate_chunks); }));
  check(m->add_counter("conveyor_chunks_busy_total",
                       "Submitted chunks refused because the queue was full",
                       [j] { return as_double(j->counters().busy); }));

  // The journal.
  check(m->add_counter("conveyor_journal_records_total", "Journal records appended",
                       [j] { return as_double(j->journal().counters().records); }));
  check(m->add_counter("conveyor_journal_written_bytes_total", "Bytes appended to the journal",
                       [j] { return as_double(j->journal().counters().bytes); }));
  check(m->add_gauge("conveyor_journal_file_bytes", "Size of the journal file",
                     [j] { return as_double(j->journal().counters().file_bytes); }));
  check(m->add_counter("conveyor_journal_fsyncs_total", "Journal group commits (fsyncs)",
                       [j] { return as_double(j->journal().counters().fsyncs); }));
  check(m->add_gauge("conveyor_journal_fsync_last_seconds", "Duration of the last journal fsync",
                     [j] { return j->journal().counters().last_fsync_seconds; }));
  check(m->add_gauge("conveyor_journal_fsync_average_seconds",
                     "Average journal fsync duration since start",
                     [j] { return j->journal().counters().average_fsync_seconds; }));
  check(m->add_counter("conveyor_journal_compactions_total", "Journal compactions",
                       [j] { return as_double(j->journal().counters().compactions); }));

  // The producer socket.
  check(m->add_counter("conveyor_producer_messages_total",
                       "Producer requests received, malformed ones included",
                       [p] { return as_double(p->counters().messages); }));
  check(m->add_counter("conveyor_producer_acks_total", "ACK and DUPLICATE replies to producers",
                       [p] { return as_double(p->counters().acks); }));
  check(m->add_counter("conveyor_producer_duplicate_replies_total",
                       "DUPLICATE replies to producers",
                       [p] { return as_double(p->counters().duplicates); }));
  check(m->add_counter("conveyor_producer_busy_replies_total", "BUSY replies to producers",
                       [p] { return as_double(p->counters().busy); }));
  check(m->add_counter("conveyor_producer_error_replies_total", "ERROR replies to producers",
                       [p] { return as_double(p->counters().errors); }));
  check(m->add_counter("conveyor_producer_unroutable_replies_total",
                       "Replies whose producer was gone or full",
                       [p] { return as_double(p->counters().unroutable); }));
  check(m->add_gauge("conveyor_producer_fetches_parked", "Result fetches waiting for results",
                     [p] { return as_double(p->counters().parked); }));

  // The worker socket.
  check(m->add_counter("conveyor_worker_hub_unroutable_messages_total",
                       "Messages to workers that were gone or full",
                       [h] { return as_double(h->unroutable()); }));
  check(m->add_counter("conveyor_worker_hub_malformed_messages_total",
                       "Messages from workers that did not decode",
                       [h] { return as_double(h->malformed()); }));
  return m;
}

std::shared_ptr<CallbackCollector> worker_metrics(const WorkerAgent& agent) {
  auto m = std::make_shared<CallbackCollector>();
  const WorkerAgent* a = &agent;
  check(m->add_counter("conveyor_worker_steps_total", "Step plans run by this worker's stage",
                       [a] { return as_double(a->counters().steps); }));
  check(m->add_counter("conveyor_worker_stale_messages_total",
                       "Links and steps for a stage epoch no longer held",
                       [a] { return as_double(a->counters().stale_messages); }));
  check(m->add_gauge("conveyor_worker_registered",
                     "1 while the coordinator has this worker registered, else 0",
                     [a] { return a->counters().registered ? 1.0 : 0.0; }));
  check(m->add_gauge("conveyor_worker_stage_epoch", "Epoch of the stage held; 0 without one",
                     [a] { return as_double(a->counters().epoch); }));
  return m;
}

std::unique_ptr<MetricsServer> start_metrics_or_throw(int port,
                                                      std::shared_ptr<CallbackCollector> metrics,
                                                      std::function<bool()> ready) {
  Expected<std::unique_ptr<MetricsServer>> server =
      MetricsServer::start("0.0.0.0:" + std::to_string(port));
  if (!server.ok()) {
    throw Error(server.status().code(), "--metrics-port: " + server.status().message());
  }
  if (metrics) (*server)->add_collectable(std::move(metrics));
  (*server)->set_readiness(std::move(ready));
  return std::move(server).value();
}

}  // namespace conveyor::cli
