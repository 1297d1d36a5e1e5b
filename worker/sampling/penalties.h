// Repetition, presence and frequency penalties: the first step of sampling, applied
// to the logits before temperature and the filters. Kept apart from the sampler so a
// GPU implementation can be checked against exactly these formulas.
#pragma once

#include <span>

#include "worker/sampling/sampling_params.h"
#include "worker/sampling/token_history.h"

namespace conveyor {

// True when any penalty in `params` would change a logit.
bool has_penalties(const SamplingParams& params);

// Applies, in vLLM's order:
//   repetition (Hugging Face), for every distinct token of prompt and output:
//     logit = logit > 0 ? logit / repetition_penalty : logit * repetition_penalty
//   frequency and presence (OpenAI), for every distinct output token with count c:
//     logit -= frequency_penalty * c + presence_penalty
// `logits` holds one entry per vocabulary token. Throws Error(kOutOfRange) when the
// history holds a token outside the vocabulary: that is a caller bug, not a request
// to ignore the token.
void apply_penalties(std::span<float> logits, const SamplingParams& params,
                     const TokenHistory& history);

}  // namespace conveyor
