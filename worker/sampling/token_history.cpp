#include "worker/sampling/token_history.h"

namespace conveyor {

TokenHistory::TokenHistory(std::span<const std::int32_t> prompt)
    : prompt_(prompt.begin(), prompt.end()) {
  for (std::int32_t token : prompt_)
    note_seen(token);
}

void TokenHistory::append(std::int32_t token) {
  output_.push_back(token);
  note_seen(token);
  auto [it, inserted] = output_index_.try_emplace(token, output_counts_.size());
  if (inserted) {
    output_counts_.push_back({token, 1});
  } else {
    ++output_counts_[it->second].count;
  }
}

std::int32_t TokenHistory::output_count(std::int32_t token) const {
  auto it = output_index_.find(token);
  return it == output_index_.end() ? 0 : output_counts_[it->second].count;
}

void TokenHistory::note_seen(std::int32_t token) {
  if (distinct_set_.insert(token).second) distinct_.push_back(token);
}

}  // namespace conveyor
