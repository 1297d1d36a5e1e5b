#include "worker/sampling/sampling_params.h"

#include <cmath>
#include <cstdio>

namespace conveyor {
namespace {

std::string format_value(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%g", value);
  return buffer;
}

Status invalid(const std::string& message) {
  return Status(ErrorCode::kInvalidArgument, message);
}

// "top_p must be in (0, 1], got 1.5"
Status out_of_range(const char* field, const std::string& range, double value) {
  return invalid(std::string(field) + " must be " + range + ", got " + format_value(value));
}

}  // namespace

Status SamplingParams::validate() const {
  // Every float check is written so that NaN fails it.
  if (!(std::isfinite(temperature) && temperature >= 0.0f)) {
    return out_of_range("temperature", "finite and >= 0", temperature);
  }
  if (top_k < -1) {
    return out_of_range("top_k", "-1 or 0 (off) or a positive count", top_k);
  }
  if (!(top_p > 0.0f && top_p <= 1.0f)) {
    return out_of_range("top_p", "in (0, 1]", top_p);
  }
  if (!(min_p >= 0.0f && min_p <= 1.0f)) {
    return out_of_range("min_p", "in [0, 1]", min_p);
  }
  if (!(repetition_penalty > 0.0f && repetition_penalty <= kMaxRepetitionPenalty)) {
    return out_of_range("repetition_penalty", "in (0, " + format_value(kMaxRepetitionPenalty) + "]",
                        repetition_penalty);
  }
  if (!(presence_penalty >= -kMaxPresencePenalty && presence_penalty <= kMaxPresencePenalty)) {
    const std::string bound = format_value(kMaxPresencePenalty);
    return out_of_range("presence_penalty", "in [-" + bound + ", " + bound + "]", presence_penalty);
  }
  if (!(frequency_penalty >= -kMaxFrequencyPenalty && frequency_penalty <= kMaxFrequencyPenalty)) {
    const std::string bound = format_value(kMaxFrequencyPenalty);
    return out_of_range("frequency_penalty", "in [-" + bound + ", " + bound + "]",
                        frequency_penalty);
  }
  if (max_tokens < 1) {
    return out_of_range("max_tokens", "at least 1", max_tokens);
  }
  if (stop_strings.size() > kMaxStopStrings) {
    return invalid("stop_strings has " + std::to_string(stop_strings.size()) +
                   " entries; at most " + std::to_string(kMaxStopStrings) + " are allowed");
  }
  for (std::size_t i = 0; i < stop_strings.size(); ++i) {
    const std::string& stop = stop_strings[i];
    if (stop.empty()) {
      return invalid("stop_strings[" + std::to_string(i) + "] is empty");
    }
    if (stop.size() > kMaxStopStringBytes) {
      return invalid("stop_strings[" + std::to_string(i) + "] is " + std::to_string(stop.size()) +
                     " bytes long; at most " + std::to_string(kMaxStopStringBytes) +
                     " are allowed");
    }
  }
  if (stop_token_ids.size() > kMaxStopTokenIds) {
    return invalid("stop_token_ids has " + std::to_string(stop_token_ids.size()) +
                   " entries; at most " + std::to_string(kMaxStopTokenIds) + " are allowed");
  }
  for (std::size_t i = 0; i < stop_token_ids.size(); ++i) {
    if (stop_token_ids[i] < 0) {
      return invalid("stop_token_ids[" + std::to_string(i) + "] is negative (" +
                     std::to_string(stop_token_ids[i]) + ")");
    }
  }
  if (top_logprobs < 0) {
    return out_of_range("top_logprobs", "at least 0", top_logprobs);
  }
  if (top_logprobs > 0 && !logprobs) {
    return invalid("top_logprobs is " + std::to_string(top_logprobs) +
                   " but logprobs is false; set logprobs to request alternatives");
  }
  return Status::ok_status();
}

Status SamplingParams::validate(std::int64_t vocab_size) const {
  Status status = validate();
  if (!status.ok()) return status;
  if (vocab_size < 1) {
    return invalid("vocab_size must be at least 1, got " + std::to_string(vocab_size));
  }
  if (top_logprobs > vocab_size) {
    return invalid("top_logprobs is " + std::to_string(top_logprobs) +
                   ", more than the vocabulary size " + std::to_string(vocab_size));
  }
  for (std::size_t i = 0; i < stop_token_ids.size(); ++i) {
    if (stop_token_ids[i] >= vocab_size) {
      return invalid("stop_token_ids[" + std::to_string(i) + "] is " +
                     std::to_string(stop_token_ids[i]) + ", outside the vocabulary of " +
                     std::to_string(vocab_size) + " tokens");
    }
  }
  return Status::ok_status();
}

}  // namespace conveyor
