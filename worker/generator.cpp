#include "worker/generator.h"

#include <algorithm>
#include <chrono>
#include <deque>

#include "common/tokenizer/stream_decoder.h"
#include "worker/sampling/rng.h"
#include "worker/sampling/stop_checker.h"
#include "worker/sampling/token_history.h"

namespace conveyor {

struct Generator::Sequence {
  Sequence(std::size_t index_in, const GenerationRequest& request_in,
           std::span<const std::int64_t> eos_ids, const Tokenizer* tokenizer)
      : index(index_in),
        request(&request_in),
        context(request_in.prompt),
        history(request_in.prompt),
        rng(Rng::for_request(request_in.params.seed)),
        stop(request_in.params, eos_ids) {
    if (tokenizer != nullptr) decoder.emplace(*tokenizer);
    result.prompt_tokens = static_cast<std::int64_t>(request_in.prompt.size());
  }

  std::size_t index;
  const GenerationRequest* request;
  std::vector<std::int32_t> context;  // prompt, then every sampled token
  std::int64_t cached = 0;            // positions of `context` whose K/V are in the cache
  std::int64_t admitted = 0;          // admission order: the newest is preempted first
  TokenHistory history;
  Rng rng;
  StopChecker stop;
  std::optional<StreamDecoder> decoder;
  GenerationResult result;
};

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

Generator::Generator(LlamaModel& model, std::shared_ptr<const Tokenizer> tokenizer,
                     GeneratorOptions options)
    : model_(model), tokenizer_(std::move(tokenizer)), options_(options) {
  if (options_.max_step_tokens < 1 || options_.max_running < 1) {
    fail(ErrorCode::kInvalidArgument, "generator needs max_step_tokens and max_running >= 1");
  }
  const ModelSpec& spec = model_.spec();
  context_limit_ = spec.max_positions > 0 ? spec.max_positions : INT64_MAX;
  eos_ids_ = spec.eos_token_ids;
  if (tokenizer_ != nullptr) {
    // The tokenizer knows end-of-turn tokens (<|im_end|>, <|eot_id|>) that a chat
    // model emits instead of its configured EOS.
    for (std::int32_t id : tokenizer_->end_of_generation_ids())
      eos_ids_.push_back(id);
  }
  std::sort(eos_ids_.begin(), eos_ids_.end());
  eos_ids_.erase(std::unique(eos_ids_.begin(), eos_ids_.end()), eos_ids_.end());
}

Status Generator::validate(const GenerationRequest& request) const {
  const ModelSpec& spec = model_.spec();
  if (request.prompt.empty()) return Status(ErrorCode::kInvalidArgument, "empty prompt");
  for (std::int32_t id : request.prompt) {
    if (id < 0 || id >= spec.vocab_size) {
      return Status(ErrorCode::kInvalidArgument, "prompt token " + std::to_string(id) +
                                                     " is outside the vocabulary of " +
                                                     std::to_string(spec.vocab_size));
    }
  }
  if (Status s = request.params.validate(spec.vocab_size); !s.ok()) return s;
  const auto prompt = static_cast<std::int64_t>(request.prompt.size());
  if (prompt >= context_limit_) {
    return Status(ErrorCode::kInvalidArgument, "prompt of " + std::to_string(prompt) +
                                                   " tokens does not fit the context of " +
                                                   std::to_string(context_limit_));
  }
  // The longest this sequence can grow must fit the whole cache, or it could never
  // finish even with every other sequence preempted.
  const std::int64_t longest = std::min(prompt + request.params.max_tokens, context_limit_);
  const KvCache& cache = model_.cache();
  if (cache.blocks_for(longest) > cache.config().num_blocks) {
    return Status(
        ErrorCode::kInvalidArgument,
        "a sequence of " + std::to_string(longest) + " tokens does not fit the KV cache (" +
            std::to_string(cache.config().num_blocks * cache.config().block_size) + " tokens)");
  }
  return {};
}

bool Generator::ensure_blocks(SequenceList& running, SequenceQueue& waiting, Sequence& sequence,
                              std::int64_t tokens) {
  KvCache& cache = model_.cache();
  while (!cache.reserve(static_cast<KvCache::SequenceId>(sequence.index), tokens)) {
    // Preempt the newest running sequence; `running` is ordered by admission, and
    // sequences are planned oldest first, so the newest has no part in this step yet.
    // It goes back to the front of the queue, to be resumed first.
    const bool preempting_self = running.back().get() == &sequence;
    preempt(*running.back());
    waiting.push_front(std::move(running.back()));
    running.pop_back();
    if (preempting_self) return false;
  }
  return true;
}

void Generator::preempt(Sequence& sequence) {
  // Recompute: the K/V are dropped and rebuilt from the prompt and the tokens
  // generated so far, which are all kept in `context`.
  model_.cache().release(static_cast<KvCache::SequenceId>(sequence.index));
  sequence.cached = 0;
  ++stats_.preemptions;
}

void Generator::accept_token(Sequence& s, const SampleResult& sample, const TextCallback& on_text) {
  const std::int32_t token = sample.token;
  s.context.push_back(token);
  s.history.append(token);
  s.result.tokens.push_back(token);
  if (s.request->params.logprobs) s.result.logprobs.push_back(sample);
  ++stats_.generated_tokens;

  const std::string piece = s.decoder ? s.decoder->push(token) : std::string();
  StopUpdate update = s.stop.on_token(token, piece);
  if (!update.finish_reason && static_cast<std::int64_t>(s.context.size()) >= context_limit_) {
    update = s.stop.finish(FinishReason::kLength);
  }
  if (on_text && !update.released.empty()) on_text(s.index, update.released);
  if (s.stop.finished()) {
    s.result.finish_reason = *s.stop.finish_reason();
    s.result.text = std::string(s.stop.text());
  }
}

std::vector<GenerationResult> Generator::run(std::span<const GenerationRequest> requests,
                                             const TextCallback& on_text) {
  stats_ = {};
  const auto start = Clock::now();

  std::vector<GenerationResult> results(requests.size());
  SequenceQueue waiting;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    results[i].status = validate(requests[i]);
    if (!results[i].status.ok()) continue;
    waiting.push_back(std::make_unique<Sequence>(i, requests[i], eos_ids_, tokenizer_.get()));
  }
  SequenceList running;  // in admission order
  // If a step throws, the blocks of every running sequence go back to the caller's
  // cache, so the next run starts from a clean cache.
  struct ReleaseOnExit {
    KvCache& cache;
    SequenceList& running;
    ~ReleaseOnExit() {
      for (const auto& s : running)
        cache.release(static_cast<KvCache::SequenceId>(s->index));
    }
  } release_on_exit{model_.cache(), running};
  std::int64_t admissions = 0;

  std::vector<SequenceStep> steps;
  std::vector<Sequence*> planned;
  while (!waiting.empty() || !running.empty()) {
    // Plan: running sequences oldest first (decode tokens and unfinished prefills),
    // then newcomers while the step budget and the cache allow.
    steps.clear();
    planned.clear();
    std::int64_t budget = options_.max_step_tokens;
    auto plan = [&](Sequence& s) {
      const std::int64_t remaining = static_cast<std::int64_t>(s.context.size()) - s.cached;
      const std::int64_t n = std::min(remaining, budget);
      budget -= n;
      SequenceStep step;
      step.tokens = std::span<const std::int32_t>(s.context).subspan(
          static_cast<std::size_t>(s.cached), static_cast<std::size_t>(n));
      step.start_position = s.cached;
      step.block_table = model_.cache().block_table(static_cast<KvCache::SequenceId>(s.index));
      step.logits = n == remaining ? LogitsWanted::kLast : LogitsWanted::kNone;
      steps.push_back(step);
      planned.push_back(&s);
    };
    for (std::size_t i = 0; i < running.size() && budget > 0; ++i) {
      Sequence& s = *running[i];
      const std::int64_t n =
          std::min(static_cast<std::int64_t>(s.context.size()) - s.cached, budget);
      if (!ensure_blocks(running, waiting, s, s.cached + n)) break;
      plan(s);
    }
    while (!waiting.empty() && budget > 0 &&
           static_cast<std::int64_t>(running.size()) < options_.max_running) {
      Sequence& s = *waiting.front();
      const std::int64_t n =
          std::min(static_cast<std::int64_t>(s.context.size()) - s.cached, budget);
      if (!model_.cache().reserve(static_cast<KvCache::SequenceId>(s.index), s.cached + n)) break;
      s.admitted = admissions++;
      running.push_back(std::move(waiting.front()));
      waiting.pop_front();
      plan(s);
    }
    if (steps.empty()) {
      // Only possible if a lone sequence cannot get blocks, which validate() rules out.
      fail(ErrorCode::kInternal, "generator made no progress: KV cache too small");
    }

    const StepResult out = model_.forward(steps);
    ++stats_.steps;
    const std::int64_t vocab = model_.spec().vocab_size;
    for (std::size_t i = 0; i < planned.size(); ++i) {
      Sequence& s = *planned[i];
      const auto n = static_cast<std::int64_t>(steps[i].tokens.size());
      // Tokens prefilled, recomputation included. A step that reaches the end of a
      // context holding generated tokens ends with the newest of them, fed back to
      // decode the next: that one is a decode input, not a prefilled token.
      const auto context = static_cast<std::int64_t>(s.context.size());
      const bool decodes_generated =
          s.cached + n == context && context > static_cast<std::int64_t>(s.request->prompt.size());
      const std::int64_t fed_back = decodes_generated ? 1 : 0;
      stats_.prompt_tokens += n - fed_back;
      s.cached += n;
      if (steps[i].logits != LogitsWanted::kLast) continue;
      const SampleResult sample =
          sampler_.sample(out.row(out.logits_begin[i], vocab), s.request->params, s.history, s.rng);
      if (stats_.generated_tokens == 0) stats_.first_token_seconds = seconds_since(start);
      accept_token(s, sample, on_text);
    }
    // Finished sequences leave and free their blocks.
    for (auto it = running.begin(); it != running.end();) {
      Sequence& s = **it;
      if (!s.stop.finished()) {
        ++it;
        continue;
      }
      model_.cache().release(static_cast<KvCache::SequenceId>(s.index));
      results[s.index] = std::move(s.result);
      it = running.erase(it);
    }
  }
  stats_.seconds = seconds_since(start);
  return results;
}

}  // namespace conveyor
