#include "coordinator/planner/stage_split.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace conveyor::planner {
namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

std::int64_t size_of(const WorkerRow& row) {
  return static_cast<std::int64_t>(row.size());
}

std::size_t at(std::int64_t i) {
  return static_cast<std::size_t>(i);
}

}  // namespace

LayerTable::LayerTable(const ModelFootprint& model)
    : kv_bytes_per_layer_(model.kv_bytes_per_layer),
      embedding_bytes_(model.embedding_bytes),
      head_bytes_(model.head_bytes) {
  prefix_.reserve(model.layer_bytes.size() + 1);
  prefix_.push_back(0);
  for (std::uint64_t bytes : model.layer_bytes)
    prefix_.push_back(prefix_.back() + bytes);
}

std::uint64_t LayerTable::total_bytes() const {
  return stage_bytes(0, num_layers(), 0, 1);
}

std::uint64_t LayerTable::stage_bytes(std::int64_t first, std::int64_t end, std::int64_t position,
                                      std::int64_t stages) const {
  std::uint64_t bytes = prefix_[at(end)] - prefix_[at(first)] +
                        kv_bytes_per_layer_ * static_cast<std::uint64_t>(end - first);
  if (position == 0) bytes += embedding_bytes_;
  if (position == stages - 1) bytes += head_bytes_;
  return bytes;
}

double LayerTable::stage_time(std::int64_t first, std::int64_t end, double speed) const {
  const double share = static_cast<double>(prefix_[at(end)] - prefix_[at(first)]) /
                       static_cast<double>(prefix_.back());
  return share / speed;
}

bool split_fits(const LayerTable& table, const WorkerRow& row) {
  const std::int64_t layers = table.num_layers();
  const std::int64_t stages = size_of(row);
  if (stages < 1 || stages > layers) return false;
  // reachable[j]: the stages so far can cover exactly [0, j). A stage ending at j fits from
  // some reachable start iff it fits from the latest one (fewer layers, fewer bytes), so one
  // sweep per stage suffices.
  std::vector<char> reachable(at(layers) + 1, 0);
  reachable[0] = 1;
  for (std::int64_t k = 0; k < stages; ++k) {
    std::vector<char> next(at(layers) + 1, 0);
    // Every later stage still needs one layer of its own.
    const std::int64_t last_end = layers - (stages - 1 - k);
    std::int64_t latest_start = -1;
    for (std::int64_t j = 1; j <= last_end; ++j) {
      if (reachable[at(j - 1)]) latest_start = j - 1;
      next[at(j)] = latest_start >= 0 &&
                    table.stage_bytes(latest_start, j, k, stages) <= row[at(k)]->memory_bytes;
    }
    reachable = std::move(next);
  }
  return reachable[at(layers)] != 0;
}

SplitRow initial_split_row(const LayerTable& table) {
  const std::size_t size = at(table.num_layers()) + 1;
  SplitRow row{std::vector<double>(size, kInfinity), std::vector<std::int64_t>(size, -1)};
  row.best[0] = 0.0;
  return row;
}

SplitRow extend_split_row(const LayerTable& table, const SplitRow& previous, std::int64_t position,
                          std::int64_t stages, const WorkerCapacity& worker) {
  const std::int64_t layers = table.num_layers();
  SplitRow row{std::vector<double>(at(layers) + 1, kInfinity),
               std::vector<std::int64_t>(at(layers) + 1, -1)};
  // The last stage must end at the last layer; earlier ones leave a layer for each later stage.
  const std::int64_t first_end = position == stages - 1 ? layers : position + 1;
  const std::int64_t last_end = layers - (stages - 1 - position);
  for (std::int64_t end = first_end; end <= last_end; ++end) {
    double& best = row.best[at(end)];
    // Walking the start backwards only adds bytes and time, so both bounds end the walk.
    for (std::int64_t start = end - 1; start >= position; --start) {
      if (table.stage_bytes(start, end, position, stages) > worker.memory_bytes) break;
      const double time = table.stage_time(start, end, worker.speed);
      if (time >= best) break;
      const double candidate = std::max(previous.best[at(start)], time);
      if (candidate < best) {
        best = candidate;
        row.from[at(end)] = start;
      }
    }
  }
  return row;
}

std::optional<Split> split_from_rows(const std::vector<SplitRow>& rows) {
  if (rows.size() < 2) return std::nullopt;
  const std::size_t stages = rows.size() - 1;
  const std::int64_t layers = static_cast<std::int64_t>(rows.back().best.size()) - 1;
  const double bottleneck = rows.back().best[at(layers)];
  if (std::isinf(bottleneck)) return std::nullopt;
  Split split{std::vector<std::int64_t>(stages), bottleneck};
  std::int64_t end = layers;
  for (std::size_t k = stages; k >= 1; --k) {
    split.ends[k - 1] = end;
    end = rows[k].from[at(end)];
  }
  return split;
}

std::optional<Split> best_split(const LayerTable& table, const WorkerRow& row) {
  const std::int64_t stages = size_of(row);
  if (stages < 1 || stages > table.num_layers()) return std::nullopt;
  std::vector<SplitRow> rows{initial_split_row(table)};
  for (std::int64_t k = 0; k < stages; ++k) {
    rows.push_back(extend_split_row(table, rows.back(), k, stages, *row[at(k)]));
  }
  return split_from_rows(rows);
}

}  // namespace conveyor::planner
