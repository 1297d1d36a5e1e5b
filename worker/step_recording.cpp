#include "worker/step_recording.h"

#include <string>

#include "common/status.h"

namespace conveyor {

std::int64_t recorded_rows(std::int64_t rows) {
  if (rows < 1 || rows > kMaxRecordedRows) return 0;
  return (rows + 7) / 8 * 8;
}

void pad_for_recording(StepLayout& layout, std::int64_t rows) {
  const std::int64_t tokens = layout.num_tokens();
  if (layout.sequences.empty() || static_cast<std::int64_t>(layout.sequences.size()) != tokens) {
    fail(ErrorCode::kInvalidArgument, "a recorded step must be a decode step, one row a sequence");
  }
  if (rows < tokens) {
    fail(ErrorCode::kInvalidArgument, "a recorded step of " + std::to_string(tokens) +
                                          " rows cannot be padded to " + std::to_string(rows));
  }
  // The first sequence's table: a block the padding rows may read, never write.
  const std::span<const std::int32_t> table = layout.sequences.front().block_table.first(1);
  for (std::int64_t row = tokens; row < rows; ++row) {
    if (!layout.tokens.empty()) layout.tokens.push_back(0);
    layout.positions.push_back(0);
    layout.slots.push_back(kNoSlot);
    layout.sequences.push_back({row, 1, 0, table});
  }
  layout.recorded_rows = rows;
}

}  // namespace conveyor
