#include "worker/sampling/sample_row.h"

#include "worker/sampling/rng.h"

namespace conveyor {

SampleRow make_sample_row(const SamplingParams& params, const TokenHistory& history,
                          std::uint64_t seed, std::uint64_t step,
                          std::deque<std::vector<std::int32_t>>& lists) {
  SampleRow row;
  row.greedy = params.is_greedy();
  row.temperature = params.temperature;
  row.top_k = params.top_k;
  row.top_p = params.top_p;
  row.min_p = params.min_p;
  row.repetition_penalty = params.repetition_penalty;
  row.presence_penalty = params.presence_penalty;
  row.frequency_penalty = params.frequency_penalty;
  // Rng is counter-based: the uniform at `step` is the one Sampler would draw there.
  row.uniform = Rng::uniform_at(seed, step);
  row.seen_tokens = history.distinct_tokens();
  std::vector<std::int32_t>& tokens = lists.emplace_back();
  std::vector<std::int32_t>& counts = lists.emplace_back();
  for (const TokenCount& entry : history.output_counts()) {
    tokens.push_back(entry.token);
    counts.push_back(entry.count);
  }
  row.output_tokens = tokens;
  row.output_counts = counts;
  return row;
}

}  // namespace conveyor
