// Splitting the layers among one ordered row of workers: the memory check and the exact
// bottleneck-minimising split. Internal to the planner (see cluster_plan.h for the rules).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "coordinator/planner/cluster_plan.h"

namespace conveyor::planner {

// The model as the split sees it: prefix sums, so any range's bytes and time are O(1).
// Precondition: the footprint was validated (layers present, none of zero bytes, totals
// within 64 bits), which is what keeps every sum here from overflowing.
class LayerTable {
 public:
  explicit LayerTable(const ModelFootprint& model);

  std::int64_t num_layers() const { return static_cast<std::int64_t>(prefix_.size()) - 1; }
  // Everything the model needs in one place: all layers with their K/V, embedding and head.
  std::uint64_t total_bytes() const;
  // Memory of the stage at `position` of `stages` holding layers [first, end).
  std::uint64_t stage_bytes(std::int64_t first, std::int64_t end, std::int64_t position,
                            std::int64_t stages) const;
  // (bytes of layers [first, end) / all layer bytes) / speed.
  double stage_time(std::int64_t first, std::int64_t end, double speed) const;

 private:
  std::vector<std::uint64_t> prefix_;  // prefix_[i] = bytes of layers [0, i)
  std::uint64_t kv_bytes_per_layer_;
  std::uint64_t embedding_bytes_;
  std::uint64_t head_bytes_;
};

using WorkerRow = std::vector<const WorkerCapacity*>;  // stage order: row[k] runs stage k

// Whether the row can hold the model at all (memory only). O(stages * layers).
bool split_fits(const LayerTable& table, const WorkerRow& row);

// One step of the bottleneck DP. After k stages, best[j] is the smallest bottleneck with which
// stages 0..k-1 cover layers [0, j) (infinity when they cannot), and from[j] is where stage k-1
// starts in that split.
struct SplitRow {
  std::vector<double> best;
  std::vector<std::int64_t> from;
};

// The row before any stage: only [0, 0) is covered, at no cost.
SplitRow initial_split_row(const LayerTable& table);
// Adds the stage at `position` of `stages`, run by `worker`.
SplitRow extend_split_row(const LayerTable& table, const SplitRow& previous, std::int64_t position,
                          std::int64_t stages, const WorkerCapacity& worker);

struct Split {
  std::vector<std::int64_t> ends;  // ends[k] = end layer of stage k; ends.back() = num layers
  double bottleneck = 0.0;
};

// Reads the split back from rows[0] (initial) .. rows[S] (all stages); nullopt when
// rows[S] does not reach the last layer.
std::optional<Split> split_from_rows(const std::vector<SplitRow>& rows);

// The split of the layers over `row` with the smallest bottleneck; nullopt when none fits.
std::optional<Split> best_split(const LayerTable& table, const WorkerRow& row);

}  // namespace conveyor::planner
