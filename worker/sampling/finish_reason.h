// Why a sequence finished, spelled as the OpenAI API spells finish_reason.
#pragma once

#include <string_view>

namespace conveyor {

enum class FinishReason {
  kStop,    // a stop string, a stop token id, or end-of-sequence
  kLength,  // max_tokens reached
};

constexpr std::string_view to_string(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
  }
  return "unknown";
}

}  // namespace conveyor
