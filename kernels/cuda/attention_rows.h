// How the tensor-core attention splits a step's rows between its two kernels
// (DeviceStep::decode_rows and prefill_groups). Host code, tested on machines without a GPU.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/backend.h"

namespace conveyor::cuda {

struct AttentionRows {
  // The rows of sequences with one new token: a block each.
  std::vector<std::int32_t> decode_rows;
  // The first row of each run of at most kPrefillGroupRows (cuda_ops.h) consecutive rows of
  // a sequence with more: a block per run.
  std::vector<std::int32_t> prefill_groups;
};

AttentionRows attention_rows(const StepLayout& layout);

}  // namespace conveyor::cuda
