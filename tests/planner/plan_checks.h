// Independent re-computations for the planner tests: the memory and time of a stage from the
// rules in cluster_plan.h, a brute-force split over every set of split points, and a check
// that a plan is well formed.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "coordinator/planner/cluster_plan.h"

namespace conveyor::testing {

inline std::uint64_t layer_sum(const ModelFootprint& model, std::int64_t first, std::int64_t end) {
  std::uint64_t sum = 0;
  for (std::int64_t i = first; i < end; ++i)
    sum += model.layer_bytes[static_cast<std::size_t>(i)];
  return sum;
}

inline std::uint64_t stage_need(const ModelFootprint& model, std::int64_t first, std::int64_t end,
                                std::size_t position, std::size_t stages) {
  std::uint64_t need = layer_sum(model, first, end) +
                       model.kv_bytes_per_layer * static_cast<std::uint64_t>(end - first);
  if (position == 0) need += model.embedding_bytes;
  if (position + 1 == stages) need += model.head_bytes;
  return need;
}

inline double stage_time(const ModelFootprint& model, std::int64_t first, std::int64_t end,
                         double speed) {
  const auto layers = static_cast<std::int64_t>(model.layer_bytes.size());
  return static_cast<double>(layer_sum(model, first, end)) /
         static_cast<double>(layer_sum(model, 0, layers)) / speed;
}

// The smallest bottleneck over every split of the layers among `row` in this order that fits
// memory; nullopt when none fits.
inline std::optional<double> brute_force_bottleneck(const ModelFootprint& model,
                                                    const std::vector<WorkerCapacity>& row) {
  const auto layers = static_cast<std::int64_t>(model.layer_bytes.size());
  std::optional<double> best;
  std::vector<std::int64_t> ends;
  auto visit = [&](auto&& self, std::int64_t first) -> void {
    const std::size_t position = ends.size();
    if (position == row.size()) {
      if (first != layers) return;
      double worst = 0.0;
      std::int64_t start = 0;
      for (std::size_t k = 0; k < row.size(); ++k) {
        worst = std::max(worst, stage_time(model, start, ends[k], row[k].speed));
        start = ends[k];
      }
      if (!best || worst < *best) best = worst;
      return;
    }
    for (std::int64_t end = first + 1; end <= layers; ++end) {
      if (stage_need(model, first, end, position, row.size()) > row[position].memory_bytes) break;
      ends.push_back(end);
      self(self, end);
      ends.pop_back();
    }
  };
  visit(visit, 0);
  return best;
}

// The smallest bottleneck over every ordering of `members` (brute force).
inline std::optional<double> brute_force_best_order(const ModelFootprint& model,
                                                    std::vector<WorkerCapacity> members) {
  std::sort(members.begin(), members.end(),
            [](const WorkerCapacity& a, const WorkerCapacity& b) { return a.id < b.id; });
  std::optional<double> best;
  do {
    const std::optional<double> time = brute_force_bottleneck(model, members);
    if (time && (!best || *time < *best)) best = time;
  } while (std::next_permutation(
      members.begin(), members.end(),
      [](const WorkerCapacity& a, const WorkerCapacity& b) { return a.id < b.id; }));
  return best;
}

// Whether any `stages` of `workers`, in any order, hold the model (brute force).
inline bool any_arrangement_fits(const ModelFootprint& model,
                                 const std::vector<WorkerCapacity>& workers, std::size_t stages) {
  std::vector<WorkerCapacity> row;
  std::vector<bool> used(workers.size(), false);
  auto visit = [&](auto&& self) -> bool {
    if (row.size() == stages) return brute_force_bottleneck(model, row).has_value();
    for (std::size_t i = 0; i < workers.size(); ++i) {
      if (used[i]) continue;
      used[i] = true;
      row.push_back(workers[i]);
      const bool fits = self(self);
      row.pop_back();
      used[i] = false;
      if (fits) return true;
    }
    return false;
  };
  return visit(visit);
}

inline const WorkerCapacity& worker_named(const std::vector<WorkerCapacity>& workers,
                                          const std::string& id) {
  const auto it = std::find_if(workers.begin(), workers.end(),
                               [&](const WorkerCapacity& w) { return w.id == id; });
  REQUIRE(it != workers.end());
  return *it;
}

inline std::vector<WorkerCapacity> row_of(const ReplicaPlan& replica,
                                          const std::vector<WorkerCapacity>& workers) {
  std::vector<WorkerCapacity> row;
  for (const StageSlot& stage : replica.stages)
    row.push_back(worker_named(workers, stage.worker_id));
  return row;
}

// Every replica covers [0, L) contiguously with non-empty stages that fit their worker's
// memory, reports its bytes and times truthfully, has the same stage count as the others, and
// no worker appears twice; idle_workers is exactly everyone else, sorted.
inline void check_well_formed(const ClusterPlan& plan, const std::vector<WorkerCapacity>& workers,
                              const ModelFootprint& model) {
  const auto layers = static_cast<std::int64_t>(model.layer_bytes.size());
  REQUIRE_FALSE(plan.replicas.empty());
  const std::size_t stages = plan.replicas.front().stages.size();
  std::set<std::string> seen;
  for (const ReplicaPlan& replica : plan.replicas) {
    REQUIRE(replica.stages.size() == stages);
    std::int64_t next = 0;
    for (std::size_t k = 0; k < stages; ++k) {
      const StageSlot& stage = replica.stages[k];
      const WorkerCapacity& worker = worker_named(workers, stage.worker_id);
      CHECK(seen.insert(stage.worker_id).second);
      CHECK(stage.first_layer == next);
      CHECK(stage.end_layer > stage.first_layer);
      next = stage.end_layer;
      const std::uint64_t need = stage_need(model, stage.first_layer, stage.end_layer, k, stages);
      CHECK(stage.bytes == need);
      CHECK(need <= worker.memory_bytes);
      CHECK(stage.relative_time ==
            doctest::Approx(stage_time(model, stage.first_layer, stage.end_layer, worker.speed)));
    }
    CHECK(next == layers);
  }
  std::vector<std::string> idle;
  for (const WorkerCapacity& worker : workers) {
    if (!seen.contains(worker.id)) idle.push_back(worker.id);
  }
  std::sort(idle.begin(), idle.end());
  CHECK(plan.idle_workers == idle);
}

// "w<i>". Built by appending: GCC 12 reports a false -Wrestrict for "literal" + std::string.
inline std::string worker_id(std::int64_t i) {
  std::string id = "w";
  id += std::to_string(i);
  return id;
}

inline ModelFootprint uniform_model(std::size_t layers, std::uint64_t bytes_per_layer) {
  ModelFootprint model;
  model.layer_bytes.assign(layers, bytes_per_layer);
  return model;
}

inline std::vector<WorkerCapacity> equal_workers(std::size_t count, std::uint64_t memory) {
  std::vector<WorkerCapacity> workers;
  for (std::size_t i = 0; i < count; ++i) {
    workers.push_back({worker_id(static_cast<std::int64_t>(i)), memory, 1.0});
  }
  return workers;
}

}  // namespace conveyor::testing
