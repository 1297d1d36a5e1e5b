// What compression cost, measured on a held-out text (the scoring library of
// `conveyor eval`, worker/scoring/): the perplexity of the source and of the compressed
// model, and the mean KL divergence of the compressed model's next-token distributions
// from the source's, with their top-1 agreement. Both models run the same windows in
// step, so no logits are kept beyond a chunk.
#pragma once

#include <cstdint>
#include <span>

#include <nlohmann/json.hpp>

#include "common/model_source.h"
#include "kernels/backend.h"

namespace conveyor::compress {

// {"tokens_scored", "windows", "window", "perplexity_source", "perplexity",
//  "kl_mean", "top1_agreement", "seconds"} over `tokens` cut into windows of `window`
// (at most the models' context). Throws Error(kInvalidArgument) for models of
// different vocabulary sizes or a text too short to predict anything, and what
// loading and scoring throw.
nlohmann::json quality_report(Backend& backend, const ModelSource& source,
                              const ModelSource& compressed, std::span<const std::int32_t> tokens,
                              std::int64_t window);

}  // namespace conveyor::compress
