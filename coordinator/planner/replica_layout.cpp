#include "coordinator/planner/replica_layout.h"

#include <algorithm>
#include <limits>

namespace conveyor::planner {
namespace {

std::size_t at(std::int64_t i) {
  return static_cast<std::size_t>(i);
}

// Memory and speed, the only things a stage position cares about: workers equal in both are
// interchangeable, so orderings that only swap them are tried once.
bool capacity_before(const WorkerCapacity* a, const WorkerCapacity* b) {
  if (a->memory_bytes != b->memory_bytes) return a->memory_bytes > b->memory_bytes;
  return a->speed > b->speed;
}

bool interchangeable(const WorkerCapacity* a, const WorkerCapacity* b) {
  return !capacity_before(a, b) && !capacity_before(b, a);
}

void rank(WorkerRow& members) {
  std::sort(members.begin(), members.end(),
            [](const WorkerCapacity* a, const WorkerCapacity* b) { return ranks_before(*a, *b); });
}

// For rows too long to search: the orderings that matter most for fitting (the largest
// worker where the embedding or the head adds bytes) and for time (the fastest first).
std::vector<WorkerRow> simple_orderings(const WorkerRow& ranked) {
  std::vector<WorkerRow> orderings{ranked};
  WorkerRow largest_at_both_ends(ranked.begin() + 2, ranked.end());
  largest_at_both_ends.insert(largest_at_both_ends.begin(), ranked[0]);
  largest_at_both_ends.push_back(ranked[1]);
  orderings.push_back(largest_at_both_ends);
  WorkerRow largest_last(ranked.begin() + 1, ranked.end());
  largest_last.push_back(ranked[0]);
  orderings.push_back(largest_last);
  orderings.emplace_back(ranked.rbegin(), ranked.rend());
  WorkerRow fastest_first = ranked;
  std::stable_sort(
      fastest_first.begin(), fastest_first.end(),
      [](const WorkerCapacity* a, const WorkerCapacity* b) { return a->speed > b->speed; });
  orderings.push_back(fastest_first);
  WorkerRow by_id = ranked;
  std::sort(by_id.begin(), by_id.end(),
            [](const WorkerCapacity* a, const WorkerCapacity* b) { return a->id < b->id; });
  orderings.push_back(by_id);
  return orderings;
}

ReplicaPlan to_replica(const LayerTable& table, const WorkerRow& row, const Split& split) {
  ReplicaPlan replica;
  const std::int64_t stages = static_cast<std::int64_t>(row.size());
  std::int64_t first = 0;
  for (std::int64_t k = 0; k < stages; ++k) {
    const WorkerCapacity& worker = *row[at(k)];
    const std::int64_t end = split.ends[at(k)];
    replica.stages.push_back({worker.id, first, end, table.stage_bytes(first, end, k, stages),
                              table.stage_time(first, end, worker.speed)});
    first = end;
  }
  return replica;
}

// Depth-first over the distinct orderings in lexicographic order of the ranked members. Each
// level adds one stage to the bottleneck DP, so orderings that share a prefix share its rows,
// and a prefix whose best partial bottleneck is already no better than the best full one is
// cut.
class OrderingSearch {
 public:
  OrderingSearch(const LayerTable& table, WorkerRow ranked)
      : table_(table), members_(std::move(ranked)), used_(members_.size(), 0) {
    rows_.push_back(initial_split_row(table_));
  }

  std::optional<ReplicaPlan> run() {
    visit();
    if (!best_) return std::nullopt;
    return to_replica(table_, best_row_, *best_);
  }

 private:
  void visit() {
    const std::int64_t stages = static_cast<std::int64_t>(members_.size());
    const std::int64_t depth = static_cast<std::int64_t>(row_.size());
    if (depth == stages) {
      std::optional<Split> split = split_from_rows(rows_);
      if (split && (!best_ || split->bottleneck < best_->bottleneck)) {
        best_ = std::move(split);
        best_row_ = row_;
      }
      return;
    }
    for (std::size_t i = 0; i < members_.size(); ++i) {
      if (used_[i]) continue;
      if (i > 0 && !used_[i - 1] && interchangeable(members_[i - 1], members_[i])) continue;
      SplitRow next = extend_split_row(table_, rows_.back(), depth, stages, *members_[i]);
      const double partial = *std::min_element(next.best.begin(), next.best.end());
      const double bound = best_ ? best_->bottleneck : std::numeric_limits<double>::infinity();
      if (!(partial < bound)) continue;
      used_[i] = 1;
      row_.push_back(members_[i]);
      rows_.push_back(std::move(next));
      visit();
      rows_.pop_back();
      row_.pop_back();
      used_[i] = 0;
    }
  }

  const LayerTable& table_;
  WorkerRow members_;
  std::vector<char> used_;
  WorkerRow row_;
  std::vector<SplitRow> rows_;
  std::optional<Split> best_;
  WorkerRow best_row_;
};

}  // namespace

bool ranks_before(const WorkerCapacity& a, const WorkerCapacity& b) {
  if (a.memory_bytes != b.memory_bytes) return a.memory_bytes > b.memory_bytes;
  if (a.speed != b.speed) return a.speed > b.speed;
  return a.id < b.id;
}

bool replica_fits(const LayerTable& table, WorkerRow members) {
  if (members.empty()) return false;
  rank(members);
  if (static_cast<std::int64_t>(members.size()) > kExhaustiveStages) {
    const std::vector<WorkerRow> orderings = simple_orderings(members);
    return std::any_of(orderings.begin(), orderings.end(),
                       [&](const WorkerRow& row) { return split_fits(table, row); });
  }
  // Ranked order is the first in capacity order, so this walks every distinct ordering.
  do {
    if (split_fits(table, members)) return true;
  } while (std::next_permutation(members.begin(), members.end(), capacity_before));
  return false;
}

std::optional<ReplicaPlan> plan_replica(const LayerTable& table, WorkerRow members) {
  if (members.empty()) return std::nullopt;
  rank(members);
  if (static_cast<std::int64_t>(members.size()) <= kExhaustiveStages) {
    return OrderingSearch(table, std::move(members)).run();
  }
  std::optional<Split> best;
  WorkerRow best_row;
  for (const WorkerRow& row : simple_orderings(members)) {
    std::optional<Split> split = best_split(table, row);
    if (split && (!best || split->bottleneck < best->bottleneck)) {
      best = std::move(split);
      best_row = row;
    }
  }
  if (!best) return std::nullopt;
  return to_replica(table, best_row, *best);
}

}  // namespace conveyor::planner
