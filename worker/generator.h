// Generator: runs a set of generation requests to completion on one LlamaModel,
// batching them: every step is one forward call over all running sequences (decode
// tokens and prefill chunks together, under a token budget), sequences join while KV
// blocks last and leave as they finish. When blocks run out mid-decode, the newest
// sequence is preempted and later recomputed from its prompt and the tokens it had.
//
// This is the engine loop of `conveyor generate`; the coordinator's scheduler, which
// plans steps for pipelines of workers, replaces it for batch jobs.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/tokenizer/tokenizer.h"
#include "worker/llama_model.h"
#include "worker/sampling/finish_reason.h"
#include "worker/sampling/sampler.h"
#include "worker/sampling/sampling_params.h"

namespace conveyor {

struct GenerationRequest {
  std::vector<std::int32_t> prompt;  // token ids, at least one
  SamplingParams params;
};

struct GenerationResult {
  // Not OK when the request was refused before it ran (an empty prompt, invalid
  // sampling parameters, too long for the context or the KV cache); the other
  // requests run regardless.
  Status status;
  std::int64_t prompt_tokens = 0;
  // Every sampled token, including a final stop or end-of-sequence token.
  std::vector<std::int32_t> tokens;
  // The output text (without stop strings or end-of-sequence text); empty when the
  // generator has no tokenizer.
  std::string text;
  FinishReason finish_reason = FinishReason::kLength;
  // One entry per token in `tokens` when params.logprobs.
  std::vector<SampleResult> logprobs;
};

struct GeneratorStats {
  std::int64_t steps = 0;
  // Tokens prefilled: every prompt token once, plus the prompt and generated tokens
  // of preempted sequences again when they are recomputed.
  std::int64_t prompt_tokens = 0;
  std::int64_t generated_tokens = 0;  // sampled
  std::int64_t preemptions = 0;
  double seconds = 0;
  double first_token_seconds = 0;  // from start to the first sampled token
};

struct GeneratorOptions {
  std::int64_t max_step_tokens = 512;  // tokens in one forward call (prefill chunking)
  std::int64_t max_running = 64;       // sequences decoding together
};

class Generator {
 public:
  // `tokenizer` may be null (models without one): then results carry ids only and
  // stop strings cannot match.
  Generator(LlamaModel& model, std::shared_ptr<const Tokenizer> tokenizer,
            GeneratorOptions options = {});

  // Streams text as it is released (stop strings held back), per request index.
  using TextCallback = std::function<void(std::size_t request, std::string_view text)>;

  // Runs every valid request to completion; a refused one gets its reason in
  // GenerationResult::status. Errors of the model itself (a backend failure) throw,
  // after every KV block the run held is returned to the cache.
  std::vector<GenerationResult> run(std::span<const GenerationRequest> requests,
                                    const TextCallback& on_text = {});

  const GeneratorStats& stats() const { return stats_; }

 private:
  struct Sequence;
  using SequenceList = std::vector<std::unique_ptr<Sequence>>;
  using SequenceQueue = std::deque<std::unique_ptr<Sequence>>;

  Status validate(const GenerationRequest& request) const;
  // Reserves blocks for `tokens` positions of `sequence`, preempting the newest
  // running sequences into `waiting` as needed; false when `sequence` itself was.
  bool ensure_blocks(SequenceList& running, SequenceQueue& waiting, Sequence& sequence,
                     std::int64_t tokens);
  void preempt(Sequence& sequence);
  void accept_token(Sequence& sequence, const SampleResult& sample, const TextCallback& on_text);

  LlamaModel& model_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  GeneratorOptions options_;
  Sampler sampler_;
  GeneratorStats stats_;
  std::int64_t context_limit_ = 0;
  std::vector<std::int64_t> eos_ids_;
};

}  // namespace conveyor
