#include "kernels/cpu/step_checks.h"

#include <string>

#include "common/status.h"

namespace conveyor {

void check_step_layout(const StepLayout& layout) {
  const std::int64_t tokens = layout.num_tokens();
  auto invalid = [](const std::string& what) {
    fail(ErrorCode::kInvalidArgument, "step layout: " + what);
  };
  if (static_cast<std::int64_t>(layout.slots.size()) != tokens ||
      (!layout.tokens.empty() && static_cast<std::int64_t>(layout.tokens.size()) != tokens)) {
    invalid("tokens, positions and slots differ in length");
  }
  for (const AttentionSequence& seq : layout.sequences) {
    if (seq.first_row < 0 || seq.num_new <= 0 || seq.start_position < 0 ||
        seq.first_row + seq.num_new > tokens) {
      invalid("a sequence outside the step's rows");
    }
    for (std::int64_t i = 0; i < seq.num_new; ++i) {
      if (layout.positions[static_cast<std::size_t>(seq.first_row + i)] != seq.start_position + i) {
        invalid("positions do not follow their sequence's start position");
      }
    }
  }
  for (std::int64_t row : layout.logit_rows) {
    if (row < 0 || row >= tokens) invalid("a logit row outside the step");
  }
}

void check_kv_slots(std::span<const std::int64_t> slots, const KvLayerView& layer) {
  const std::int64_t capacity = layer.num_blocks * layer.block_size;
  for (const std::int64_t slot : slots) {
    if (slot == kNoSlot) continue;
    if (slot < 0 || slot >= capacity) {
      fail(ErrorCode::kInvalidArgument,
           "store_kv: slot " + std::to_string(slot) + " outside the cache");
    }
  }
}

}  // namespace conveyor
