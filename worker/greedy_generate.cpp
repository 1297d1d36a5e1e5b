#include "worker/greedy_generate.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "common/status.h"

namespace conveyor {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Per-prompt progress.
struct Sequence {
  KvCache::SequenceId id = 0;
  std::span<const std::int32_t> prompt;
  std::int64_t prefilled = 0;  // prompt tokens already in the cache
  std::vector<std::int32_t> generated;
  bool finished = false;
};

}  // namespace

double GenerationStats::decode_tokens_per_second() const {
  return decode_seconds > 0 ? static_cast<double>(decode_tokens) / decode_seconds : 0.0;
}

std::int32_t argmax(std::span<const float> logits) {
  return static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

GreedyResult generate_greedy(LlamaModel& model, std::span<const std::vector<std::int32_t>> prompts,
                             const GreedyOptions& options) {
  KvCache& cache = model.cache();
  const std::int64_t vocab = model.spec().vocab_size;
  GreedyResult result;
  std::vector<Sequence> seqs(prompts.size());
  KvCache::SequenceId next_id = 0;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty()) fail(ErrorCode::kInvalidArgument, "generate: empty prompt");
    while (cache.contains(next_id))
      ++next_id;  // ids the caller's own sequences do not use
    seqs[i].id = next_id++;
    seqs[i].prompt = prompts[i];
    result.stats.prompt_tokens += static_cast<std::int64_t>(prompts[i].size());
  }
  auto release_all = [&] {
    for (const auto& s : seqs)
      cache.release(s.id);
  };

  auto accept = [&](Sequence& s, std::span<const float> row) {
    const std::int32_t token = argmax(row);
    s.generated.push_back(token);
    const bool stop = std::find(options.stop_tokens.begin(), options.stop_tokens.end(), token) !=
                      options.stop_tokens.end();
    s.finished = stop || static_cast<std::int64_t>(s.generated.size()) >= options.max_new_tokens;
  };

  try {
    std::vector<SequenceStep> step;
    std::vector<Sequence*> in_step;
    // One forward call for the whole step; each sequence that got logits takes a token.
    auto run_step = [&] {
      const StepResult out = model.forward(step);
      for (std::size_t i = 0; i < in_step.size(); ++i) {
        if (out.logits_begin[i + 1] > out.logits_begin[i]) {
          accept(*in_step[i], out.row(out.logits_begin[i], vocab));
        }
      }
    };
    auto reserve = [&](Sequence& s, std::int64_t tokens) {
      if (!cache.reserve(s.id, tokens)) {
        fail(ErrorCode::kResourceExhausted,
             "generate: the kv cache has no room for " + std::to_string(tokens) + " positions");
      }
    };

    const auto prefill_start = Clock::now();
    if (options.max_new_tokens <= 0) {
      for (auto& s : seqs)
        s.finished = true;
    }
    for (bool more = true; more;) {
      step.clear();
      in_step.clear();
      for (auto& s : seqs) {
        const auto remaining = static_cast<std::int64_t>(s.prompt.size()) - s.prefilled;
        if (s.finished || remaining == 0) continue;
        const std::int64_t n =
            options.prefill_chunk > 0 ? std::min(options.prefill_chunk, remaining) : remaining;
        reserve(s, s.prefilled + n);
        step.push_back(
            {s.prompt.subspan(static_cast<std::size_t>(s.prefilled), static_cast<std::size_t>(n)),
             s.prefilled, cache.block_table(s.id),
             n == remaining ? LogitsWanted::kLast : LogitsWanted::kNone});
        in_step.push_back(&s);
        s.prefilled += n;
      }
      more = !step.empty();
      if (more) {
        run_step();
        ++result.stats.prefill_steps;
      }
    }
    result.stats.prefill_seconds = seconds_since(prefill_start);

    const auto decode_start = Clock::now();
    for (bool more = true; more;) {
      step.clear();
      in_step.clear();
      for (auto& s : seqs) {
        if (s.finished) continue;
        const auto position = static_cast<std::int64_t>(s.prompt.size() + s.generated.size()) - 1;
        reserve(s, position + 1);
        step.push_back({std::span<const std::int32_t>(&s.generated.back(), 1), position,
                        cache.block_table(s.id), LogitsWanted::kLast});
        in_step.push_back(&s);
      }
      more = !step.empty();
      if (more) {
        run_step();
        ++result.stats.decode_steps;
        result.stats.decode_tokens += static_cast<std::int64_t>(step.size());
      }
    }
    result.stats.decode_seconds = seconds_since(decode_start);
  } catch (...) {
    release_all();
    throw;
  }
  release_all();
  for (auto& s : seqs) {
    result.stats.generated_tokens += static_cast<std::int64_t>(s.generated.size());
    result.tokens.push_back(std::move(s.generated));
  }
  return result;
}

}  // namespace conveyor
