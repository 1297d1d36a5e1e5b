// A greedy decode through LlamaModel::forward for the tests that compare two ways of
// running the same steps (recorded against unrecorded): every sequence's prompt, then
// one token a step, one sequence sending its logits to the host and the others taking
// the backend's argmax.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "worker/llama_model.h"

namespace conveyor::testing {

struct DecodeRun {
  std::vector<std::int32_t> tokens;  // each step's token of each live sequence
  std::vector<float> logits;         // the host sequence's logits, every step
};

// `prompts[s]` with block table `tables[s]`; `steps` decode steps after the prefill.
// `live(step)`: how many sequences (the first ones) run that step; sequence `host_row`
// sends its logits to the host.
inline DecodeRun greedy_decode(LlamaModel& model,
                               const std::vector<std::vector<std::int32_t>>& prompts,
                               const std::vector<std::span<const std::int32_t>>& tables, int steps,
                               std::size_t host_row, const std::function<std::size_t(int)>& live) {
  const std::int64_t vocab = model.spec().vocab_size;
  std::vector<std::vector<std::int32_t>> next = prompts;
  std::vector<std::int64_t> starts(prompts.size(), 0);
  DecodeRun run;
  for (int step = 0; step <= steps; ++step) {
    const std::size_t count = live(step);
    std::vector<SequenceStep> batch;
    for (std::size_t s = 0; s < count; ++s) {
      batch.push_back({next[s], starts[s], tables[s],
                       s == host_row ? LogitsWanted::kLast : LogitsWanted::kGreedy});
    }
    const StepResult out = model.forward(batch);
    for (std::size_t s = 0; s < count; ++s) {
      starts[s] += static_cast<std::int64_t>(next[s].size());
      std::int32_t token = out.greedy[s];
      if (s == host_row) {
        const auto row = out.row(out.logits_begin[s], vocab);
        run.logits.insert(run.logits.end(), row.begin(), row.end());
        token = static_cast<std::int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
      }
      run.tokens.push_back(token);
      next[s] = {token};
    }
  }
  return run;
}

}  // namespace conveyor::testing
