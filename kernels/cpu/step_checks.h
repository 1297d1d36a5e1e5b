// The checks every backend applies to a step before its ops touch memory: a bad
// layout is Error(kInvalidArgument) here, never a wild read in a kernel (on a GPU, a
// device fault that ends the process's context).
#pragma once

#include <span>

#include "kernels/backend.h"

namespace conveyor {

// Consistent sizes, sequences within the rows, positions following their sequence's
// start, logit rows within the step.
void check_step_layout(const StepLayout& layout);

// Every slot inside the layer's cache, or kNoSlot (stores nothing).
void check_kv_slots(std::span<const std::int64_t> slots, const KvLayerView& layer);

}  // namespace conveyor
