#include "coordinator/planner/cluster_plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "coordinator/planner/replica_layout.h"
#include "coordinator/planner/stage_split.h"

namespace conveyor {
namespace {

using planner::LayerTable;
using planner::WorkerRow;

std::size_t at(std::int64_t i) {
  return static_cast<std::size_t>(i);
}

std::uint64_t checked_add(std::uint64_t a, std::uint64_t b) {
  std::uint64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    fail(ErrorCode::kInvalidArgument, "the model's footprint overflows 64 bits");
  }
  return sum;
}

void validate_request(const PlanRequest& request) {
  if (request.stages < 0) {
    fail(ErrorCode::kInvalidArgument,
         "stages must be 0 (auto) or positive, got " + std::to_string(request.stages));
  }
  if (request.max_replicas < 0) {
    fail(ErrorCode::kInvalidArgument, "max_replicas must be 0 (no limit) or positive, got " +
                                          std::to_string(request.max_replicas));
  }
}

// Also proves that no sum LayerTable forms can overflow: each is at most this total.
void validate_model(const ModelFootprint& model) {
  if (model.layer_bytes.empty()) fail(ErrorCode::kInvalidArgument, "the model has no layers");
  std::uint64_t total = checked_add(model.embedding_bytes, model.head_bytes);
  for (std::size_t i = 0; i < model.layer_bytes.size(); ++i) {
    if (model.layer_bytes[i] == 0) {
      fail(ErrorCode::kInvalidArgument, "layer " + std::to_string(i) + " has no weights");
    }
    total = checked_add(total, checked_add(model.layer_bytes[i], model.kv_bytes_per_layer));
  }
}

void validate_workers(const std::vector<WorkerCapacity>& workers) {
  if (workers.empty()) fail(ErrorCode::kUnavailable, "no workers registered");
  std::set<std::string> ids;
  for (const WorkerCapacity& worker : workers) {
    if (worker.id.empty()) fail(ErrorCode::kInvalidArgument, "a worker has an empty id");
    if (!ids.insert(worker.id).second) {
      fail(ErrorCode::kInvalidArgument, "worker id '" + worker.id + "' registered twice");
    }
    if (!std::isfinite(worker.speed) || worker.speed <= 0.0) {
      fail(ErrorCode::kInvalidArgument, "worker '" + worker.id + "' has speed " +
                                            std::to_string(worker.speed) +
                                            "; speeds must be positive");
    }
  }
}

std::string describe_bytes(std::uint64_t bytes) {
  const double gib = static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0);
  char text[32];
  std::snprintf(text, sizeof text, "%.2f GiB", gib);
  return std::to_string(bytes) + " bytes (" + text + ")";
}

[[noreturn]] void fail_no_fit(const LayerTable& table, const std::vector<WorkerCapacity>& ranked,
                              const std::string& what_was_tried) {
  fail(ErrorCode::kResourceExhausted,
       "the model needs " + describe_bytes(table.total_bytes()) + " (" +
           std::to_string(table.num_layers()) +
           " layers with their K/V cache, embedding and head); the largest worker has " +
           describe_bytes(ranked.front().memory_bytes) + "; " + what_was_tried);
}

WorkerRow top(const std::vector<WorkerCapacity>& ranked, std::int64_t count) {
  WorkerRow row;
  for (std::int64_t i = 0; i < count; ++i)
    row.push_back(&ranked[at(i)]);
  return row;
}

// The first replicas * stages ranked workers, dealt in snake order so that replica r gets the
// r-th largest worker, the (2R-1-r)-th, and so on: each replica has one of the largest.
std::vector<WorkerRow> deal(const std::vector<WorkerCapacity>& ranked, std::int64_t replicas,
                            std::int64_t stages) {
  std::vector<WorkerRow> groups(at(replicas));
  for (std::int64_t round = 0; round < stages; ++round) {
    for (std::int64_t r = 0; r < replicas; ++r) {
      const std::int64_t group = round % 2 == 0 ? r : replicas - 1 - r;
      groups[at(group)].push_back(&ranked[at(round * replicas + r)]);
    }
  }
  return groups;
}

std::int64_t choose_stages(const LayerTable& table, const std::vector<WorkerCapacity>& ranked,
                           std::int64_t requested) {
  const std::int64_t workers = static_cast<std::int64_t>(ranked.size());
  const std::int64_t layers = table.num_layers();
  if (requested > 0) {
    if (requested > layers) {
      fail(ErrorCode::kInvalidArgument, std::to_string(requested) + " stages requested for " +
                                            std::to_string(layers) + " layers");
    }
    if (requested > workers) {
      fail(ErrorCode::kUnavailable, std::to_string(requested) + " stages need " +
                                        std::to_string(requested) + " workers; " +
                                        std::to_string(workers) + " registered");
    }
    if (!planner::replica_fits(table, top(ranked, requested))) {
      fail_no_fit(table, ranked,
                  "no " + std::to_string(requested) + " workers hold it in " +
                      std::to_string(requested) + " stages");
    }
    return requested;
  }
  // The S workers with the most memory fit whenever any S workers do, so the first S whose
  // top workers fit is the fewest stages possible.
  const std::int64_t most = std::min(workers, layers);
  for (std::int64_t stages = 1; stages <= most; ++stages) {
    if (planner::replica_fits(table, top(ranked, stages))) return stages;
  }
  fail_no_fit(table, ranked, "no pipeline of 1 to " + std::to_string(most) + " stages holds it");
}

ClusterPlan plan(std::vector<WorkerCapacity> workers, const ModelFootprint& model,
                 PlanRequest request) {
  validate_request(request);
  validate_model(model);
  validate_workers(workers);
  std::sort(workers.begin(), workers.end(), planner::ranks_before);
  const LayerTable table(model);
  const std::int64_t stages = choose_stages(table, workers, request.stages);

  std::int64_t replicas = static_cast<std::int64_t>(workers.size()) / stages;
  if (request.max_replicas > 0) replicas = std::min(replicas, request.max_replicas);
  std::vector<WorkerRow> groups;
  // One replica of the top workers fits (choose_stages made sure), so this ends by then.
  for (; replicas >= 1; --replicas) {
    groups = deal(workers, replicas, stages);
    if (std::all_of(groups.begin(), groups.end(),
                    [&](const WorkerRow& group) { return planner::replica_fits(table, group); })) {
      break;
    }
  }

  ClusterPlan result;
  std::set<std::string> busy;
  for (const WorkerRow& group : groups) {
    std::optional<ReplicaPlan> replica = planner::plan_replica(table, group);
    if (!replica) fail(ErrorCode::kInternal, "a replica that fits found no split");
    for (const StageSlot& stage : replica->stages)
      busy.insert(stage.worker_id);
    result.replicas.push_back(std::move(*replica));
  }
  for (const WorkerCapacity& worker : workers) {
    if (!busy.contains(worker.id)) result.idle_workers.push_back(worker.id);
  }
  std::sort(result.idle_workers.begin(), result.idle_workers.end());
  return result;
}

}  // namespace

double ReplicaPlan::bottleneck() const {
  double worst = 0.0;
  for (const StageSlot& stage : stages)
    worst = std::max(worst, stage.relative_time);
  return worst;
}

std::string ClusterPlan::summary() const {
  std::string text;
  for (std::size_t r = 0; r < replicas.size(); ++r) {
    text += "replica " + std::to_string(r) + ":";
    const char* separator = " ";
    for (const StageSlot& stage : replicas[r].stages) {
      char numbers[64];
      std::snprintf(
          numbers, sizeof numbers, " [%lld,%lld) %.2f GiB t=%.3f",
          static_cast<long long>(stage.first_layer), static_cast<long long>(stage.end_layer),
          static_cast<double>(stage.bytes) / (1024.0 * 1024.0 * 1024.0), stage.relative_time);
      text += separator + stage.worker_id + numbers;
      separator = " | ";
    }
    text += "\n";
  }
  if (!idle_workers.empty()) {
    text += "idle:";
    for (const std::string& id : idle_workers)
      text += " " + id;
    text += "\n";
  }
  return text;
}

Expected<ClusterPlan> plan_cluster(std::vector<WorkerCapacity> workers, const ModelFootprint& model,
                                   PlanRequest request) {
  return to_expected([&] { return plan(std::move(workers), model, request); });
}

}  // namespace conveyor
