#include "coordinator/cluster/cluster_manager.h"

#include <algorithm>

#include "common/log/log.h"
#include "worker/node/incarnation.h"
#include "worker/step_codec.h"

namespace conveyor {
namespace {

spdlog::logger& cluster_log() {
  static spdlog::logger& out = logger("cluster");
  return out;
}

}  // namespace

ClusterManager::ClusterManager(WorkerHub& hub, ClusterOptions options,
                               Channel<EngineRequest>& requests,
                               SchedulerActor::ResultCallback on_result)
    : hub_(hub),
      options_(std::move(options)),
      requests_(requests),
      on_result_(std::move(on_result)),
      incarnation_(new_incarnation()),
      membership_changed_(Clock::now()),
      last_heartbeat_(Clock::now()) {}

ClusterManager::~ClusterManager() {
  for (auto& [epoch, replica] : replicas_) {
    if (replica.pipeline) replica.pipeline->lose("the coordinator is stopping");
  }
  for (Actor& actor : actors_)
    actor.thread.join();
}

void ClusterManager::on_unroutable(const std::string& identity) {
  Worker* worker = worker_by_identity(identity);
  if (worker == nullptr || worker->replica == 0) return;
  // A step (or a link) that cannot reach its worker would leave the replica waiting
  // for a result that never comes.
  dissolve(worker->replica,
           "a message to worker " + worker->info.worker_id + " could not be delivered",
           /*suspect=*/true);
}

ClusterStats ClusterManager::stats() const {
  std::lock_guard lock(stats_mutex_);
  ClusterStats s = stats_;
  s.requeued_requests = requeued_.load();
  return s;
}

ClusterManager::Worker* ClusterManager::worker_by_identity(const std::string& identity) {
  for (auto& [id, worker] : workers_) {
    if (worker.identity == identity) return &worker;
  }
  return nullptr;
}

void ClusterManager::on_message(const std::string& identity, ControlMessage message) {
  if (auto* r = std::get_if<RegisterMessage>(&message)) {
    on_register(identity, *r);
    return;
  }
  Worker* worker = worker_by_identity(identity);
  if (worker == nullptr) {
    // A worker this coordinator does not know (it registered with an earlier one, or
    // was dropped as silent): incarnation 0 tells it to drop its stage and register.
    hub_.send(identity, CoordinatorHeartbeatMessage{kUnknownWorker});
    return;
  }
  worker->last_heard = Clock::now();
  const std::string id = worker->info.worker_id;
  if (auto* ready = std::get_if<StageReadyMessage>(&message)) {
    on_stage_ready(id, *ready);
  } else if (auto* linked = std::get_if<LinkedMessage>(&message)) {
    on_linked(id, *linked);
  } else if (auto* result = std::get_if<StepResultMessage>(&message)) {
    on_step_result(id, *result);
  } else if (auto* failed = std::get_if<StageFailedMessage>(&message)) {
    log::warn(cluster_log(),
              "worker " + id + " failed its stage (epoch " + std::to_string(failed->epoch) +
                  "): " + failed->message,
              {{"worker", id}, {"epoch", failed->epoch}});
    if (worker->replica == failed->epoch) dissolve(failed->epoch, "worker " + id + " failed");
  } else if (auto* leaving = std::get_if<LeavingMessage>(&message)) {
    remove_worker(id, "left: " + leaving->reason);
  } else if (auto* beat = std::get_if<WorkerHeartbeatMessage>(&message)) {
    // A worker of a live replica that no longer holds that replica's stage (it
    // dropped it on its own) cannot serve it.
    auto r = replicas_.find(worker->replica);
    if (r != replicas_.end() && r->second.state == ReplicaState::kLive &&
        beat->epoch != worker->replica) {
      dissolve(worker->replica, "worker " + id + " no longer holds its stage");
    }
  }
  // Heartbeats only refresh last_heard.
}

void ClusterManager::on_register(const std::string& identity, const RegisterMessage& m) {
  auto it = workers_.find(m.worker_id);
  if (it != workers_.end()) {
    if (it->second.info.incarnation == m.incarnation) {  // a repeat: the Welcome was in flight
      it->second.identity = identity;
      it->second.last_heard = Clock::now();
      // ... or the worker dropped its stage and registers again: its live replica is
      // gone (a replica still loading may see a repeat sent before the Welcome).
      auto r = replicas_.find(it->second.replica);
      if (r != replicas_.end() && r->second.state == ReplicaState::kLive) {
        dissolve(it->second.replica, "worker " + m.worker_id + " registered again");
      }
      hub_.send(identity, WelcomeMessage{static_cast<std::uint32_t>(options_.heartbeat.count()),
                                         static_cast<std::uint32_t>(options_.liveness.count()),
                                         incarnation_});
      return;
    }
    remove_worker(m.worker_id, "restarted");
  }
  Worker worker;
  worker.identity = identity;
  worker.info = m;
  worker.last_heard = Clock::now();
  workers_[m.worker_id] = worker;
  hub_.send(identity,
            WelcomeMessage{static_cast<std::uint32_t>(options_.heartbeat.count()),
                           static_cast<std::uint32_t>(options_.liveness.count()), incarnation_});
  log::info(cluster_log(),
            "worker " + m.worker_id + " joined: " + m.backend + ", " +
                std::to_string(m.memory_bytes >> 20) + " MiB, speed " +
                std::to_string(static_cast<int>(m.speed)) + ", at " + m.host,
            {{"worker", m.worker_id}, {"host", m.host}});
  plan_pending_ = true;
  membership_changed_ = Clock::now();
  std::lock_guard lock(stats_mutex_);
  stats_.workers = static_cast<std::int64_t>(workers_.size());
}

void ClusterManager::remove_worker(const std::string& id, const std::string& why) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return;
  const std::uint64_t replica = it->second.replica;
  // Leaving is the worker's own choice; any other removal is a fault.
  log::write(cluster_log(), why.rfind("left", 0) == 0 ? log::Level::kInfo : log::Level::kWarn,
             "worker " + id + " " + why, {{"worker", id}});
  // Dissolved while the worker is still listed, so that it is sent a Release too
  // (it may be alive after all, and must not keep a stage nobody uses).
  if (replica != 0) dissolve(replica, "worker " + id + " " + why);
  workers_.erase(id);
  plan_pending_ = true;
  membership_changed_ = Clock::now();
  std::lock_guard lock(stats_mutex_);
  ++stats_.workers_lost;
  stats_.workers = static_cast<std::int64_t>(workers_.size());
}

void ClusterManager::dissolve(std::uint64_t epoch, const std::string& why, bool suspect) {
  auto it = replicas_.find(epoch);
  if (it == replicas_.end()) return;
  Replica& replica = it->second;
  const bool was_live = replica.state == ReplicaState::kLive;
  if (replica.pipeline) replica.pipeline->lose(why);
  for (const std::string& id : replica.workers) {
    auto w = workers_.find(id);
    if (w == workers_.end() || w->second.replica != epoch) continue;
    hub_.send(w->second.identity, ReleaseMessage{epoch});
    w->second.replica = 0;
  }
  replicas_.erase(it);
  log::warn(cluster_log(),
            "replica " + std::to_string(epoch) + " dissolved (" + why + ")" +
                (was_live ? ": its requests go back to the queue" : ""),
            {{"epoch", epoch}});
  plan_pending_ = true;
  membership_changed_ = Clock::now();
  if (suspect) plan_not_before_ = membership_changed_ + options_.liveness;
  if (!was_live) return;
  std::lock_guard lock(stats_mutex_);
  ++stats_.replicas_lost;
  --stats_.live_replicas;
}

void ClusterManager::on_stage_ready(const std::string& worker, const StageReadyMessage& m) {
  auto it = replicas_.find(m.epoch);
  if (it == replicas_.end() || it->second.state != ReplicaState::kLoading) return;
  Replica& r = it->second;
  const auto pos = std::find(r.workers.begin(), r.workers.end(), worker) - r.workers.begin();
  if (pos == static_cast<std::ptrdiff_t>(r.workers.size())) return;
  const auto i = static_cast<std::size_t>(pos);
  r.ready[i] = true;
  r.addresses[i] = m.receiver_address;
  if (!m.receiver_address.empty()) {
    log::info(cluster_log(),
              "replica " + std::to_string(r.epoch) + " stage " + std::to_string(i + 1) + " on " +
                  worker + " receives activations at " + m.receiver_address + " over " +
                  m.transport,
              {{"epoch", r.epoch}, {"stage", i + 1}, {"worker", worker}});
  }
  if (!std::all_of(r.ready.begin(), r.ready.end(), [](bool b) { return b; })) return;
  if (r.workers.size() == 1) {
    go_live(r);
    return;
  }
  r.state = ReplicaState::kLinking;
  for (std::size_t s = 0; s + 1 < r.workers.size(); ++s)
    hub_.send(workers_.at(r.workers[s]).identity, LinkMessage{r.epoch, r.addresses[s + 1]});
}

void ClusterManager::on_linked(const std::string& worker, const LinkedMessage& m) {
  auto it = replicas_.find(m.epoch);
  if (it == replicas_.end() || it->second.state != ReplicaState::kLinking) return;
  Replica& r = it->second;
  const auto pos = std::find(r.workers.begin(), r.workers.end(), worker) - r.workers.begin();
  if (pos + 1 >= static_cast<std::ptrdiff_t>(r.workers.size())) return;
  r.linked[static_cast<std::size_t>(pos)] = true;
  if (std::all_of(r.linked.begin(), r.linked.end() - 1, [](bool b) { return b; })) go_live(r);
}

void ClusterManager::go_live(Replica& r) {
  r.state = ReplicaState::kLive;
  std::vector<std::string> identities;
  for (const std::string& id : r.workers)
    identities.push_back(workers_.at(id).identity);
  r.pipeline = std::make_shared<RemotePipeline>(hub_, r.epoch, std::move(identities));
  std::string layout;
  for (const StageSlot& s : r.plan.stages) {
    layout += (layout.empty() ? "" : " -> ") + s.worker_id + " [" + std::to_string(s.first_layer) +
              "-" + std::to_string(s.end_layer - 1) + "]";
  }
  log::info(cluster_log(), "replica " + std::to_string(r.epoch) + " live: " + layout,
            {{"epoch", r.epoch}, {"layout", layout}});
  std::shared_ptr<RemotePipeline> pipeline = r.pipeline;
  auto done = std::make_shared<std::atomic<bool>>(false);
  actors_.push_back({{}, done});
  actors_.back().thread = std::thread([this, pipeline, done] {
    SchedulerActorOptions scheduler = options_.scheduler;
    if (options_.metrics_registry) {
      scheduler.metrics = std::make_shared<EngineMetrics>(
          options_.metrics_registry,
          std::map<std::string, std::string>{{"replica", std::to_string(pipeline->epoch())}});
    }
    if (options_.on_lease) {
      scheduler.on_take = [this, epoch = pipeline->epoch()](std::uint64_t key) {
        options_.on_lease(key, epoch);
      };
    }
    SchedulerActor actor(*pipeline, scheduler);
    try {
      actor.run_until_lost(requests_, on_result_, [this](EngineRequest request) {
        if (request.hand_backs >= options_.max_hand_backs) {
          EngineResult failed;
          failed.key = request.key;
          failed.origin = request.origin;
          failed.prompt_tokens = static_cast<std::int64_t>(request.prompt.size());
          failed.status =
              Status(ErrorCode::kUnavailable, "the request's pipeline was lost " +
                                                  std::to_string(request.hand_backs) + " times");
          on_result_(std::move(failed));
          return;
        }
        ++requeued_;
        // Closed only when the coordinator stops; the journal still holds the request.
        (void)requests_.send(std::move(request));
      });
      if (!pipeline->lost()) {
        // The actor stopped on its own (a broken invariant): its requests went back,
        // and the replica must go too.
        log::error(cluster_log(),
                   "replica " + std::to_string(pipeline->epoch()) +
                       "'s scheduler stopped: " + actor.lost_because().to_string(),
                   {{"epoch", pipeline->epoch()}});
        std::lock_guard lock(stopped_mutex_);
        stopped_epochs_.push_back(pipeline->epoch());
      }
    } catch (const std::exception& e) {  // a callback threw: nothing to hand back
      log::error(cluster_log(),
                 "replica " + std::to_string(pipeline->epoch()) + " stopped: " + e.what(),
                 {{"epoch", pipeline->epoch()}});
      std::lock_guard lock(stopped_mutex_);
      stopped_epochs_.push_back(pipeline->epoch());
    }
    const EngineStats& s = actor.stats();
    log::info(cluster_log(),
              "replica " + std::to_string(pipeline->epoch()) + " ran " + std::to_string(s.steps) +
                  " steps, " + std::to_string(s.generated_tokens) + " tokens, " +
                  std::to_string(s.preemptions) + " preemptions (" +
                  std::to_string(s.swap_preemptions - s.disk_swap_preemptions) +
                  " swapped to host, " + std::to_string(s.disk_swap_preemptions) + " to disk)",
              {{"epoch", pipeline->epoch()}});
    done->store(true);
  });
  std::lock_guard lock(stats_mutex_);
  ++stats_.live_replicas;
  ++stats_.replicas_formed;
}

void ClusterManager::on_step_result(const std::string& worker, const StepResultMessage& m) {
  auto it = replicas_.find(m.epoch);
  const bool member = it != replicas_.end() &&
                      std::find(it->second.workers.begin(), it->second.workers.end(), worker) !=
                          it->second.workers.end();
  if (!member || it->second.state != ReplicaState::kLive) {
    std::lock_guard lock(stats_mutex_);
    ++stats_.stale_results;  // from a replica already dissolved
    return;
  }
  Expected<StepOutput> output = decode_step_output(m.output);
  if (!output.ok()) {
    dissolve(m.epoch,
             "worker " + worker + " sent a malformed result: " + output.status().to_string());
    return;
  }
  if (!output->status.ok()) {
    dissolve(m.epoch, "a step failed on worker " + worker + ": " + output->status.to_string(),
             /*suspect=*/true);
    return;
  }
  it->second.pipeline->deliver(std::move(output).value());
}

void ClusterManager::plan_idle_workers() {
  std::vector<WorkerCapacity> idle;
  for (const auto& [id, w] : workers_) {
    if (w.replica == 0) idle.push_back({id, w.info.memory_bytes, w.info.speed});
  }
  plan_pending_ = false;
  if (idle.empty()) return;
  PlanRequest request;
  request.stages = options_.stages;
  if (options_.max_replicas > 0) {
    request.max_replicas = options_.max_replicas - static_cast<std::int64_t>(replicas_.size());
    if (request.max_replicas <= 0) return;
  }
  Expected<ClusterPlan> plan = plan_cluster(idle, options_.footprint, request);
  if (!plan.ok()) {
    const std::string message = plan.status().message();
    if (message != last_plan_error_) log::info(cluster_log(), "waiting for workers: " + message);
    last_plan_error_ = message;
    return;
  }
  last_plan_error_.clear();
  if (plan->replicas.empty()) return;
  // One line per plan: its replicas (and idle workers) joined by "; ".
  std::string summary = plan->summary();
  while (!summary.empty() && summary.back() == '\n')
    summary.pop_back();
  std::string one_line;
  for (char c : summary)
    one_line += c == '\n' ? std::string("; ") : std::string(1, c);
  log::info(cluster_log(), "plan: " + one_line);
  for (const ReplicaPlan& rp : plan->replicas) {
    Replica r;
    r.epoch = next_epoch_++;
    r.plan = rp;
    r.formed = Clock::now();
    const auto stages = static_cast<std::uint32_t>(rp.stages.size());
    for (std::uint32_t s = 0; s < stages; ++s) {
      const StageSlot& slot = rp.stages[s];
      r.workers.push_back(slot.worker_id);
      Worker& w = workers_.at(slot.worker_id);
      w.replica = r.epoch;
      hub_.send(w.identity, AssignMessage{r.epoch, options_.model, slot.first_layer, slot.end_layer,
                                          s, stages, options_.kv.num_blocks, options_.kv.block_size,
                                          options_.kv.swap.host_blocks,
                                          options_.kv.swap.disk_blocks, options_.kv.swap.disk_dir});
    }
    r.addresses.assign(stages, "");
    r.ready.assign(stages, false);
    r.linked.assign(stages, false);
    log::info(
        cluster_log(),
        "replica " + std::to_string(r.epoch) + " forming: " + std::to_string(stages) + " stage(s)",
        {{"epoch", r.epoch}});
    replicas_.emplace(r.epoch, std::move(r));
  }
}

void ClusterManager::on_tick() {
  const Clock::time_point now = Clock::now();
  if (now - last_heartbeat_ >= options_.heartbeat) {
    for (const auto& [id, w] : workers_)
      hub_.send(w.identity, CoordinatorHeartbeatMessage{incarnation_});
    last_heartbeat_ = now;
  }
  std::vector<std::string> silent;
  for (const auto& [id, w] : workers_) {
    // A worker loading or linking its stage may be busy for a while (a large model):
    // stage_timeout bounds that instead.
    auto r = replicas_.find(w.replica);
    if (r != replicas_.end() && r->second.state != ReplicaState::kLive) continue;
    if (now - w.last_heard > options_.liveness) silent.push_back(id);
  }
  for (const std::string& id : silent)
    remove_worker(id, "stopped answering (no heartbeat)");
  std::vector<std::uint64_t> stuck;
  for (const auto& [epoch, r] : replicas_) {
    if (r.state != ReplicaState::kLive && now - r.formed > options_.stage_timeout)
      stuck.push_back(epoch);
  }
  for (std::uint64_t epoch : stuck)
    dissolve(epoch, "its stages did not load and link in time");
  std::vector<std::uint64_t> stopped;
  {
    std::lock_guard lock(stopped_mutex_);
    stopped.swap(stopped_epochs_);
  }
  for (std::uint64_t epoch : stopped)
    dissolve(epoch, "its scheduler stopped");
  // Threads of replicas that are gone and done.
  for (auto it = actors_.begin(); it != actors_.end();) {
    if (it->done->load()) {
      it->thread.join();
      it = actors_.erase(it);
    } else {
      ++it;
    }
  }
  if (plan_pending_ && now - membership_changed_ >= options_.plan_delay && now >= plan_not_before_)
    plan_idle_workers();
}

}  // namespace conveyor
