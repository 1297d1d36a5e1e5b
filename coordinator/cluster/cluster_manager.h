// ClusterManager: membership and pipeline replicas, on the worker hub's thread.
//
// Workers register (and re-register after a coordinator restart); heartbeats go both
// ways, and a worker silent for `liveness` is dead. Workers that hold no stage are
// idle; after a membership change settles (`plan_delay`) the planner forms as many
// replicas as the idle workers allow. A replica has an epoch: its workers are
// assigned their layer ranges (Assign), report their activation receivers
// (StageReady), are linked each to the next (Link/Linked), and then the replica is
// live: a scheduler actor on its own thread takes requests from the shared queue and
// drives it through a RemotePipeline. When one of its workers dies, leaves or fails,
// the replica is dissolved: its pipeline is lost, the actor hands every unfinished
// request back to the queue with its progress (another replica re-prefills prompt +
// tokens so far), the survivors are released and become idle, and planning runs
// again. Results of an epoch that is no longer live are stale: dropped and counted.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/channel.h"
#include "coordinator/cluster/remote_pipeline.h"
#include "coordinator/cluster/worker_hub.h"
#include "coordinator/planner/cluster_plan.h"
#include "coordinator/scheduler_actor.h"
#include "worker/executor.h"

namespace conveyor {

struct ClusterOptions {
  std::string model;  // the model argument each worker opens
  ModelFootprint footprint;
  std::int64_t stages = 0;  // per replica; 0 = auto
  std::int64_t max_replicas = 0;
  KvGeometry kv;
  std::chrono::milliseconds heartbeat{1000};
  std::chrono::milliseconds liveness{5000};
  std::chrono::milliseconds plan_delay{1000};
  std::chrono::milliseconds stage_timeout{120000};  // Assign to live, at most
  // A request whose replica was lost this many times fails (kUnavailable) instead of
  // going back once more: a request that brings down every worker it runs on must not
  // bring down the cluster.
  std::int32_t max_hand_backs = 5;
  SchedulerActorOptions scheduler;
  // Where each replica's engine registers its metrics, labelled replica=<epoch> (they
  // leave with the replica); null: none.
  std::shared_ptr<prometheus::Registry> metrics_registry;
  // A replica (by epoch) took a request: the request's lease.
  std::function<void(std::uint64_t key, std::uint64_t epoch)> on_lease;
};

struct ClusterStats {
  std::int64_t workers = 0;
  std::int64_t live_replicas = 0;
  std::int64_t replicas_formed = 0;
  std::int64_t replicas_lost = 0;
  std::int64_t workers_lost = 0;
  std::int64_t requeued_requests = 0;
  std::int64_t stale_results = 0;
};

class ClusterManager final : public WorkerHub::Handler {
 public:
  ClusterManager(WorkerHub& hub, ClusterOptions options, Channel<EngineRequest>& requests,
                 SchedulerActor::ResultCallback on_result);
  // `requests` must be closed first: the actors end when it is drained.
  ~ClusterManager() override;

  void on_message(const std::string& identity, ControlMessage message) override;
  void on_tick() override;
  void on_unroutable(const std::string& identity) override;

  ClusterStats stats() const;
  std::uint64_t incarnation() const { return incarnation_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Worker {
    std::string identity;
    RegisterMessage info;
    Clock::time_point last_heard;
    std::uint64_t replica = 0;  // epoch of its replica; 0 = idle
  };
  enum class ReplicaState { kLoading, kLinking, kLive };
  struct Replica {
    std::uint64_t epoch = 0;
    ReplicaPlan plan;
    std::vector<std::string> workers;    // ids, first stage first
    std::vector<std::string> addresses;  // receivers, from StageReady
    std::vector<bool> ready, linked;
    ReplicaState state = ReplicaState::kLoading;
    Clock::time_point formed;
    std::shared_ptr<RemotePipeline> pipeline;
  };

  void on_register(const std::string& identity, const RegisterMessage& m);
  void on_stage_ready(const std::string& worker, const StageReadyMessage& m);
  void on_linked(const std::string& worker, const LinkedMessage& m);
  void on_step_result(const std::string& worker, const StepResultMessage& m);
  // The worker is gone: its replica is dissolved.
  void remove_worker(const std::string& id, const std::string& why);
  // `suspect`: dissolved for a failed step, whose cause (a peer that died) may not be
  // known yet: planning then waits a liveness period, so that a dead worker is found
  // out before it is planned in again.
  void dissolve(std::uint64_t epoch, const std::string& why, bool suspect = false);
  void go_live(Replica& replica);
  void plan_idle_workers();
  Worker* worker_by_identity(const std::string& identity);

  WorkerHub& hub_;
  ClusterOptions options_;
  Channel<EngineRequest>& requests_;
  SchedulerActor::ResultCallback on_result_;
  const std::uint64_t incarnation_;

  std::map<std::string, Worker> workers_;  // by worker id
  std::map<std::uint64_t, Replica> replicas_;
  std::uint64_t next_epoch_ = 1;
  Clock::time_point membership_changed_;
  Clock::time_point plan_not_before_;
  bool plan_pending_ = false;
  Clock::time_point last_heartbeat_;
  std::string last_plan_error_;

  struct Actor {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;  // its run ended: join it
  };
  std::vector<Actor> actors_;
  std::mutex stopped_mutex_;
  std::vector<std::uint64_t> stopped_epochs_;  // replicas whose actor stopped on its own
  std::atomic<std::int64_t> requeued_{0};
  mutable std::mutex stats_mutex_;
  ClusterStats stats_;  // guarded by stats_mutex_; read from other threads
};

}  // namespace conveyor
