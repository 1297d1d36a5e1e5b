// SamplingParams: how one sequence turns logits into tokens and when it stops.
// Field names and meanings follow the OpenAI API and vLLM, so intake can map a
// request line onto this struct without translation tables.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace conveyor {

// Temperatures below this are treated as greedy: dividing logits by a value this
// small overflows float, and the distribution is one-hot for all practical purposes
// (vLLM uses the same threshold).
inline constexpr float kGreedyTemperature = 1e-5f;

// Limits that validate() enforces. Beyond them a value is far more likely to be a
// mistake than an intent, and the stop-string ones bound the per-token work and the
// text a streaming consumer may have held back.
inline constexpr float kMaxRepetitionPenalty = 10.0f;
inline constexpr float kMaxPresencePenalty = 2.0f;   // OpenAI's range is [-2, 2]
inline constexpr float kMaxFrequencyPenalty = 2.0f;  // OpenAI's range is [-2, 2]
inline constexpr std::size_t kMaxStopStrings = 32;
inline constexpr std::size_t kMaxStopStringBytes = 512;
inline constexpr std::size_t kMaxStopTokenIds = 1024;

struct SamplingParams {
  // Sampling, applied in this order: penalties -> temperature -> top-k -> top-p ->
  // min-p -> softmax -> draw.
  float temperature = 1.0f;  // 0 (or below kGreedyTemperature): greedy argmax
  std::int32_t top_k = 0;    // 0 or -1: off
  float top_p = 1.0f;        // 1: off
  float min_p = 0.0f;        // 0: off; relative to the most likely token's probability

  // Hugging Face semantics, over prompt and output tokens: a positive logit is
  // divided by the penalty, a negative one multiplied. 1: off.
  float repetition_penalty = 1.0f;
  // OpenAI semantics, over output tokens only:
  //   logit -= frequency_penalty * count + presence_penalty * (count > 0)
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;

  // Same seed -> same tokens, whatever else shares the batch. Absent: a random seed.
  std::optional<std::uint64_t> seed;

  // Stop conditions.
  std::int32_t max_tokens = 16;           // generated tokens; vLLM's and OpenAI's default
  std::vector<std::string> stop_strings;  // excluded from the output text, as OpenAI does
  std::vector<std::int32_t> stop_token_ids;
  bool ignore_eos = false;  // keep generating past the model's end-of-sequence tokens

  // Log-probabilities of the model's raw distribution (before penalties and
  // temperature), for the chosen token and, when top_logprobs > 0, that many of the
  // most likely alternatives. No cap of 20: up to the whole vocabulary, for soft labels.
  bool logprobs = false;
  std::int32_t top_logprobs = 0;

  bool is_greedy() const { return temperature < kGreedyTemperature; }

  // Checks each field on its own; the message names the offending field and value.
  Status validate() const;
  // validate() plus the checks that need the model's vocabulary size: stop token ids
  // and top_logprobs must fit in it.
  Status validate(std::int64_t vocab_size) const;
};

}  // namespace conveyor
