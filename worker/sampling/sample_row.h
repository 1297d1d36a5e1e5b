// A sequence's sampling as Backend::sample takes it (kernels/backend.h): its parameters,
// its history's penalty lists, and the uniform the host's Rng draws at that step, so that a
// backend draws the token Sampler would.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "kernels/backend.h"
#include "worker/sampling/sampling_params.h"
#include "worker/sampling/token_history.h"

namespace conveyor {

// The row for the draw at `step` of `seed` (the tokens sampled so far). The row points into
// `history` and into two lists it appends to `lists` (the output tokens and their counts);
// both must outlive it.
SampleRow make_sample_row(const SamplingParams& params, const TokenHistory& history,
                          std::uint64_t seed, std::uint64_t step,
                          std::deque<std::vector<std::int32_t>>& lists);

}  // namespace conveyor
