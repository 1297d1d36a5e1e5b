// StopChecker: decides when one sequence is finished and which of its text a
// streaming consumer may see. Fed each generated token with the text it decoded to.
//
//  - Stop token ids, and the model's end-of-sequence ids unless ignore_eos: finish
//    "stop"; that token's text is not part of the output.
//  - Stop strings: finish "stop" where the first of them is complete, which may span
//    several tokens; the output ends just before it, as with OpenAI. The result
//    does not depend on how the text is split into pieces.
//  - max_tokens generated tokens: finish "length". A stop on the same token wins.
//
// Text that could still turn into the start of a stop string is held back, so
// released text is never cut afterwards; it is released as soon as the following
// text rules the stop string out, or when the sequence finishes for another reason.
// Decoded pieces are expected to be whole UTF-8 characters; the detokeniser holds
// back incomplete ones. Stop strings then cut only at character boundaries.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "worker/sampling/finish_reason.h"
#include "worker/sampling/sampling_params.h"

namespace conveyor {

struct StopUpdate {
  // Text newly released by this call: a view into StopChecker::text(), valid until
  // the next call on the checker.
  std::string_view released;
  std::optional<FinishReason> finish_reason;  // set by the call that finishes
};

class StopChecker {
 public:
  // `eos_token_ids` are the model's end-of-sequence ids (ModelSpec::eos_token_ids).
  StopChecker(const SamplingParams& params, std::span<const std::int64_t> eos_token_ids);

  // Feeds one generated token and its decoded text (possibly empty). Throws
  // Error(kInternal) once the sequence has finished: feeding it more is a bug.
  StopUpdate on_token(std::int32_t token, std::string_view piece);

  // Ends the sequence for a reason found outside (the context window is full),
  // releasing any held-back text. Throws Error(kInternal) if already finished.
  StopUpdate finish(FinishReason reason);

  bool finished() const { return finish_reason_.has_value(); }
  std::optional<FinishReason> finish_reason() const { return finish_reason_; }
  // The stop string or stop token that ended the sequence, when one did.
  std::optional<std::string> matched_stop_string() const;
  std::optional<std::int32_t> matched_stop_token() const { return matched_stop_token_; }

  // Everything released so far: once finished, the output text.
  std::string_view text() const { return std::string_view(text_).substr(0, released_); }
  // Text received but not yet released because it may begin a stop string.
  std::string_view held_back() const { return std::string_view(text_).substr(released_); }
  std::int32_t num_tokens() const { return num_tokens_; }

 private:
  bool is_stop_token(std::int32_t token) const;
  // Finds the first complete stop string in the unreleased text; truncates and
  // finishes there.
  bool cut_at_stop_string();
  // Length of the longest unreleased suffix that is a proper prefix of a stop string.
  std::size_t held_back_length() const;
  StopUpdate update_since(std::size_t released_before) const;

  std::vector<std::string> stop_strings_;
  std::vector<std::int64_t> stop_token_ids_;  // sorted, with eos unless ignore_eos
  std::int32_t max_tokens_;

  std::string text_;          // released text followed by held-back text
  std::size_t released_ = 0;  // text_[0, released_) is released
  std::int32_t num_tokens_ = 0;
  std::optional<FinishReason> finish_reason_;
  std::optional<std::size_t> matched_stop_string_;  // index into stop_strings_
  std::optional<std::int32_t> matched_stop_token_;
};

}  // namespace conveyor
