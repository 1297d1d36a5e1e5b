// TokenHistory: the tokens of one sequence as the penalties need them. Repetition
// penalty looks at every distinct token of prompt and output; presence and
// frequency penalties at the output tokens and how often each occurred. Both are
// kept as small distinct-token lists, so applying a penalty costs O(distinct
// tokens), not O(vocabulary), and appending a token is O(1).
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace conveyor {

struct TokenCount {
  std::int32_t token = 0;
  std::int32_t count = 0;
};

class TokenHistory {
 public:
  TokenHistory() = default;
  explicit TokenHistory(std::span<const std::int32_t> prompt);

  // Records one generated token.
  void append(std::int32_t token);

  std::span<const std::int32_t> prompt() const { return prompt_; }
  std::span<const std::int32_t> output() const { return output_; }

  // Distinct tokens of prompt and output, in order of first appearance.
  std::span<const std::int32_t> distinct_tokens() const { return distinct_; }
  // Distinct output tokens with their counts, in order of first appearance.
  std::span<const TokenCount> output_counts() const { return output_counts_; }
  // How often `token` was generated (0 when never).
  std::int32_t output_count(std::int32_t token) const;

 private:
  void note_seen(std::int32_t token);

  std::vector<std::int32_t> prompt_;
  std::vector<std::int32_t> output_;
  std::vector<std::int32_t> distinct_;
  std::unordered_set<std::int32_t> distinct_set_;
  std::vector<TokenCount> output_counts_;
  std::unordered_map<std::int32_t, std::size_t> output_index_;  // token -> slot in output_counts_
};

}  // namespace conveyor
