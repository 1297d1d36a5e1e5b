#include "kernels/cuda/attention_rows.h"

#include "kernels/cuda/cuda_ops.h"

namespace conveyor::cuda {

AttentionRows attention_rows(const StepLayout& layout) {
  AttentionRows rows;
  for (const AttentionSequence& seq : layout.sequences) {
    if (seq.num_new == 1) {
      rows.decode_rows.push_back(static_cast<std::int32_t>(seq.first_row));
      continue;
    }
    for (std::int64_t i = 0; i < seq.num_new; i += kPrefillGroupRows)
      rows.prefill_groups.push_back(static_cast<std::int32_t>(seq.first_row + i));
  }
  return rows;
}

}  // namespace conveyor::cuda
