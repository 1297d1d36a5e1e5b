#include "worker/sampling/stop_checker.h"

#include <algorithm>

#include "common/status.h"

namespace conveyor {

StopChecker::StopChecker(const SamplingParams& params, std::span<const std::int64_t> eos_token_ids)
    : max_tokens_(params.max_tokens) {
  // An empty stop string would match everywhere; validate() refuses it, and it is
  // skipped here too rather than ending every sequence at once.
  for (const std::string& stop : params.stop_strings) {
    if (!stop.empty()) stop_strings_.push_back(stop);
  }
  stop_token_ids_.assign(params.stop_token_ids.begin(), params.stop_token_ids.end());
  if (!params.ignore_eos) {
    stop_token_ids_.insert(stop_token_ids_.end(), eos_token_ids.begin(), eos_token_ids.end());
  }
  std::sort(stop_token_ids_.begin(), stop_token_ids_.end());
  stop_token_ids_.erase(std::unique(stop_token_ids_.begin(), stop_token_ids_.end()),
                        stop_token_ids_.end());
}

StopUpdate StopChecker::on_token(std::int32_t token, std::string_view piece) {
  if (finished()) fail(ErrorCode::kInternal, "StopChecker fed a token after the sequence finished");
  const std::size_t released_before = released_;
  ++num_tokens_;

  if (is_stop_token(token)) {
    matched_stop_token_ = token;
    finish_reason_ = FinishReason::kStop;
    released_ = text_.size();
    return update_since(released_before);
  }

  text_.append(piece);
  if (cut_at_stop_string()) return update_since(released_before);

  if (num_tokens_ >= max_tokens_) {
    finish_reason_ = FinishReason::kLength;
    released_ = text_.size();
    return update_since(released_before);
  }

  released_ = text_.size() - held_back_length();
  return update_since(released_before);
}

StopUpdate StopChecker::finish(FinishReason reason) {
  if (finished()) fail(ErrorCode::kInternal, "StopChecker finished twice");
  const std::size_t released_before = released_;
  finish_reason_ = reason;
  released_ = text_.size();
  return update_since(released_before);
}

std::optional<std::string> StopChecker::matched_stop_string() const {
  if (!matched_stop_string_) return std::nullopt;
  return stop_strings_[*matched_stop_string_];
}

bool StopChecker::is_stop_token(std::int32_t token) const {
  return std::binary_search(stop_token_ids_.begin(), stop_token_ids_.end(),
                            static_cast<std::int64_t>(token));
}

bool StopChecker::cut_at_stop_string() {
  // The sequence stops where a stop string is first complete: the match that ends
  // earliest, and of those the one that starts earliest. Deciding by end position
  // makes the result independent of how the text was split into pieces; it is what
  // feeding the text one character at a time would give. Released text never starts
  // a stop string (it would have been held back), so every match starts in the
  // unreleased part.
  std::size_t best_end = std::string::npos;
  std::size_t best_start = std::string::npos;
  for (std::size_t i = 0; i < stop_strings_.size(); ++i) {
    const std::size_t start = text_.find(stop_strings_[i], released_);
    if (start == std::string::npos) continue;
    const std::size_t end = start + stop_strings_[i].size();
    if (end < best_end || (end == best_end && start < best_start)) {
      best_end = end;
      best_start = start;
      matched_stop_string_ = i;
    }
  }
  if (best_start == std::string::npos) return false;
  text_.resize(best_start);
  released_ = best_start;
  finish_reason_ = FinishReason::kStop;
  return true;
}

std::size_t StopChecker::held_back_length() const {
  const std::string_view unreleased = held_back();
  std::size_t longest = 0;
  for (const std::string& stop : stop_strings_) {
    // Candidate suffixes from longest to shortest; only ones longer than the best so
    // far matter. Proper prefixes only: a whole stop string was already cut.
    const std::size_t max_length = std::min(stop.size() - 1, unreleased.size());
    for (std::size_t length = max_length; length > longest; --length) {
      if (unreleased.substr(unreleased.size() - length) ==
          std::string_view(stop).substr(0, length)) {
        longest = length;
        break;
      }
    }
  }
  return longest;
}

StopUpdate StopChecker::update_since(std::size_t released_before) const {
  return {std::string_view(text_).substr(released_before, released_ - released_before),
          finish_reason_};
}

}  // namespace conveyor
