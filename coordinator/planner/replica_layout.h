// One replica: which of its workers runs which stage, and the layer split for that order.
// Internal to the planner (see cluster_plan.h for the rules).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "coordinator/planner/stage_split.h"

namespace conveyor::planner {

// Orderings of at most this many stages are searched exhaustively.
inline constexpr std::int64_t kExhaustiveStages = 6;

// The rank the planner gives workers: most memory first, then fastest, then by id.
bool ranks_before(const WorkerCapacity& a, const WorkerCapacity& b);

// Whether some order of `members` holds the model (memory only; cheap).
bool replica_fits(const LayerTable& table, WorkerRow members);

// The order of `members` and the split with the smallest bottleneck; nullopt when none fits.
std::optional<ReplicaPlan> plan_replica(const LayerTable& table, WorkerRow members);

}  // namespace conveyor::planner
