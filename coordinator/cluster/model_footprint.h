// What the planner needs to know of a model: the bytes of each layer's weights, of
// the embedding (first stage) and of the final norm and head (last stage; a tied
// head is the embedding matrix, which the last stage then holds too), and the K/V
// cache each layer reserves.
#pragma once

#include <cstdint>

#include "common/model_source.h"
#include "coordinator/planner/cluster_plan.h"

namespace conveyor {

// `kv_bytes_all_layers`: the K/V cache of one replica, all layers together.
ModelFootprint footprint_of(const ModelSource& source, std::uint64_t kv_bytes_all_layers);

}  // namespace conveyor
