#include "worker/sampling/penalties.h"

#include <string>

#include "common/status.h"

namespace conveyor {
namespace {

void check_in_vocab(std::int32_t token, std::size_t vocab_size) {
  if (token < 0 || static_cast<std::size_t>(token) >= vocab_size) {
    fail(ErrorCode::kOutOfRange, "token history holds id " + std::to_string(token) +
                                     ", outside the vocabulary of " + std::to_string(vocab_size) +
                                     " logits");
  }
}

}  // namespace

bool has_penalties(const SamplingParams& params) {
  return params.repetition_penalty != 1.0f || params.presence_penalty != 0.0f ||
         params.frequency_penalty != 0.0f;
}

void apply_penalties(std::span<float> logits, const SamplingParams& params,
                     const TokenHistory& history) {
  const float repetition = params.repetition_penalty;
  if (repetition != 1.0f) {
    for (std::int32_t token : history.distinct_tokens()) {
      check_in_vocab(token, logits.size());
      float& logit = logits[static_cast<std::size_t>(token)];
      logit = logit > 0.0f ? logit / repetition : logit * repetition;
    }
  }
  const float presence = params.presence_penalty;
  const float frequency = params.frequency_penalty;
  if (presence != 0.0f || frequency != 0.0f) {
    for (const TokenCount& entry : history.output_counts()) {
      check_in_vocab(entry.token, logits.size());
      float& logit = logits[static_cast<std::size_t>(entry.token)];
      logit -= frequency * static_cast<float>(entry.count) + presence;
    }
  }
}

}  // namespace conveyor
