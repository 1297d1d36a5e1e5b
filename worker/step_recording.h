// Decode steps shaped for recording (CUDA graphs, Backend::replay_step): a backend
// replays a recording only for a step of the same shape, so a decode step's rows are
// padded up to a multiple of eight with rows that store nothing (kNoSlot) and attend to
// one key of a real sequence; their outputs are never read. Host code, tested without a
// GPU.
#pragma once

#include <cstdint>

#include "kernels/backend.h"

namespace conveyor {

// Larger decode steps run as they are: their launches take little beside their work.
inline constexpr std::int64_t kMaxRecordedRows = 1024;

// The rows a decode step of `rows` sequences is padded to (a multiple of 8), or 0 for none
// past kMaxRecordedRows.
std::int64_t recorded_rows(std::int64_t rows);

// Pads a decode step's layout (one new token per sequence, at least one sequence) to
// `rows` rows and marks it recorded_rows = rows. The padding rows take token 0 at
// position 0, store nothing, and read the first sequence's first block. Throws
// Error(kInvalidArgument) for a layout that is not a decode step or already larger.
void pad_for_recording(StepLayout& layout, std::int64_t rows);

}  // namespace conveyor
