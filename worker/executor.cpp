#include "worker/executor.h"

#include <algorithm>
#include <string>

#include "common/status.h"

#include "worker/sampling/penalties.h"
#include "worker/sampling/rng.h"
#include "worker/sampling/sample_row.h"

namespace conveyor {

namespace {

// With kv.num_blocks 0, the blocks that fit what the backend has left after the
// weights at their largest (`weight_bound`: resident weights plus streaming slots,
// which the streamer may still be filling), what else is allocated, and the
// activation reserve.
KvCacheConfig cache_config(const Backend& backend, const ModelSpec& spec, LayerRange layers,
                           KvGeometry kv, std::uint64_t weight_bound, int lanes) {
  KvCacheConfig config;
  config.num_layers = layers.size();
  config.num_blocks = kv.num_blocks;
  config.block_size = kv.block_size;
  config.kv_dim = spec.kv_dim();
  config.dtype = kv.dtype;
  config.num_kv_heads = spec.num_kv_heads;
  if (config.num_blocks == 0) {
    const BackendMemoryInfo memory = backend.memory_info();
    const std::uint64_t in_use = memory.total_bytes - memory.available_bytes;
    const std::uint64_t other = in_use > memory.weight_bytes ? in_use - memory.weight_bytes : 0;
    // Each lane's step has its own activations and scratch (LlamaModel::launch).
    const std::uint64_t reserve = kv.reserve_bytes * static_cast<std::uint64_t>(lanes);
    const std::uint64_t taken = weight_bound + other + reserve;
    const std::uint64_t available =
        memory.total_bytes > weight_bound + other ? memory.total_bytes - weight_bound - other : 0;
    const std::uint64_t block = kv_block_bytes(config);
    const std::uint64_t room = memory.total_bytes > taken ? memory.total_bytes - taken : 0;
    // Each of K and V is one allocation: leave a block of slack for alignment.
    config.num_blocks = block > 0 ? static_cast<std::int64_t>(room / block) - 1 : 0;
    if (config.num_blocks < 1) {
      fail(ErrorCode::kResourceExhausted,
           "kv cache: no room for a block on " + backend.name() + " after the weights (" +
               std::to_string(available >> 20) + " MiB free, " + std::to_string(reserve >> 20) +
               " MiB kept for activations)");
    }
  }
  return config;
}

// Greedy without penalties or log-probs needs only the argmax of the logits, which
// the backend computes where they are (on a GPU, one index instead of the
// vocabulary's logits crosses to the host). The same token as the sampler's.
bool greedy_on_backend(const std::shared_ptr<const SequenceSampling>& sampling) {
  return sampling != nullptr && sampling->params.is_greedy() && !has_penalties(sampling->params) &&
         !sampling->params.logprobs;
}

// The host sampler's message for what Backend::sample could not sample.
std::string sample_failure_message(std::int32_t code, std::int64_t vocab) {
  switch (code) {
    case kSampleNothing:
      return "every logit is -inf or NaN: nothing to sample";
    case kSampleInfinite:
      return "a logit is +inf";
    case kSampleBadHistory:
      return "token history holds an id outside the vocabulary of " + std::to_string(vocab) +
             " logits";
    default:
      return "the backend's sampler failed with code " + std::to_string(code);
  }
}

}  // namespace

Executor::Executor(Backend& backend, const ModelSource& source, LayerRange layers, KvGeometry kv,
                   WeightBudget weight_budget) {
  // Weights first, so that an automatic cache takes what they leave.
  auto weights = std::make_unique<WeightStore>(backend, source, layers, weight_budget);
  cache_ = std::make_unique<KvCache>(
      backend, cache_config(backend, source.spec(), layers, kv, weights->bound_bytes(),
                            LlamaModel::lanes_for(backend, *weights)));
  swapper_ = std::make_unique<KvSwapper>(*cache_, kv.swap);
  model_ = std::make_unique<LlamaModel>(backend, std::move(weights), *cache_);
  backend_samples_ = backend.capabilities().sampling;
}

Executor::~Executor() = default;

StartedRun::StartedRun() = default;
StartedRun::~StartedRun() = default;

bool StartedRun::ready() const {
  try {
    return launched_ == nullptr || launched_->fence->ready();
  } catch (const Error&) {
    return true;  // a device fault: finish() waits, and reports it as the step's failure
  }
}

void StartedRun::wait() {
  if (launched_ != nullptr) launched_->fence->wait();
}

StageResult Executor::run(const StepPlan& plan, const std::vector<float>& hidden_in,
                          const StepPlan* next) {
  const std::unique_ptr<StartedRun> started = start(plan, hidden_in, next);
  return finish(*started);
}

std::unique_ptr<StartedRun> Executor::start(const StepPlan& plan,
                                            const std::vector<float>& hidden_in,
                                            const StepPlan* next, int lane) {
  auto run = std::make_unique<StartedRun>();
  run->plan_ = &plan;
  // Swaps first: a swap-out reads blocks that this step's sequences may overwrite.
  for (const KvSwap& swap : plan.swaps)
    swapper_->apply(swap);
  for (std::int64_t id : plan.released) {
    slots_.erase(id);
    swapper_->release(id);  // a sequence that left while swapped out
  }
  // The next step's swap-ins from disk read while this one computes.
  if (next != nullptr) {
    for (const KvSwap& swap : next->swaps)
      swapper_->prefetch(swap);
  }
  // A step of swaps and releases only: nothing to compute, nothing to hand on.
  if (plan.sequences.empty()) return run;

  std::vector<SequenceStep> steps;
  steps.reserve(plan.sequences.size());
  for (const PlannedSequence& s : plan.sequences) {
    SequenceStep step;
    step.tokens = s.tokens;
    step.start_position = s.start;
    step.block_table = s.block_table;
    step.logits = !s.samples                       ? LogitsWanted::kNone
                  : greedy_on_backend(s.sampling)  ? LogitsWanted::kGreedy
                  : samples_on_backend(s.sampling) ? LogitsWanted::kSampled
                                                   : LogitsWanted::kLast;
    steps.push_back(step);
  }
  if (!first()) {
    const auto expected = static_cast<std::size_t>(plan.tokens() * spec().hidden_size);
    if (hidden_in.size() != expected) {
      fail(ErrorCode::kInvalidArgument, "stage " + std::to_string(layers().begin) + ": step " +
                                            std::to_string(plan.step) + " brought " +
                                            std::to_string(hidden_in.size()) +
                                            " activations, expected " + std::to_string(expected));
    }
  }
  // The sequences the backend samples where their logits are: their rows go with the
  // step, which draws them after its logits. The last stage's contexts (what the
  // penalties see) take this step's tokens first.
  std::vector<SampleRow> device_rows;
  std::deque<std::vector<std::int32_t>> device_lists;  // the rows' token lists
  if (last()) {
    for (const PlannedSequence& s : plan.sequences) {
      record_context(s);
      if (!s.samples) continue;
      if (!s.sampling) {  // a malformed plan: the step fails, not the request
        fail(ErrorCode::kInvalidArgument,
             "sequence " + std::to_string(s.id) + " samples without sampling parameters");
      }
      if (!greedy_on_backend(s.sampling) && samples_on_backend(s.sampling))
        device_rows.push_back(device_sample_row(s, device_lists));
    }
  }
  run->launched_ = model_->launch(steps, first() ? nullptr : hidden_in.data(), device_rows, lane);
  return run;
}

StageResult Executor::finish(StartedRun& run) {
  StageResult result;
  if (run.launched_ == nullptr) return result;
  const StepPlan& plan = *run.plan_;
  StepResult out = model_->finish(*run.launched_);
  if (!last()) {
    result.hidden = std::move(out.hidden);
    return result;
  }
  const std::int64_t vocab = spec().vocab_size;
  for (std::size_t i = 0; i < plan.sequences.size(); ++i) {
    const PlannedSequence& s = plan.sequences[i];
    if (!s.samples) continue;
    SampledToken token{s.id, {}, {}};
    if (greedy_on_backend(s.sampling)) {
      token.sample.token = out.greedy[i];
      if (token.sample.token < 0) {
        token.status =
            Status(ErrorCode::kInternal, "sampling: every logit is -inf or NaN: nothing to sample");
      }
      result.samples.push_back(std::move(token));
      continue;
    }
    if (samples_on_backend(s.sampling)) {
      if (out.sampled[i] >= 0) {
        token.sample.token = out.sampled[i];
      } else {
        // Not the request's fault, but only its own, as on the host.
        token.status = Status(ErrorCode::kInternal,
                              "sampling: " + sample_failure_message(out.sampled[i], vocab));
      }
      result.samples.push_back(std::move(token));
      continue;
    }
    const auto logits = out.row(out.logits_begin[i], vocab);
    try {
      token.sample = sample(s, logits);
    } catch (const Error& e) {
      // Not the request's fault, but only its own: logits without a finite value.
      token.status = Status(ErrorCode::kInternal, "sampling: " + e.status().message());
    }
    result.samples.push_back(std::move(token));
  }
  return result;
}

void Executor::record_context(const PlannedSequence& s) {
  SamplingSlot& slot = slots_[s.id];
  // A chunk from position 0 starts the sequence over (new, or recomputed after a
  // preemption), as does one that brings the cached prefix before it; otherwise it
  // continues where the last one ended.
  if (!s.context_before.empty()) {
    slot = SamplingSlot();
    slot.context = s.context_before;
  } else if (s.start == 0 || static_cast<std::int64_t>(slot.context.size()) != s.start) {
    if (s.start != 0) {
      fail(ErrorCode::kInternal, "sequence " + std::to_string(s.id) + ": chunk at position " +
                                     std::to_string(s.start) + " after " +
                                     std::to_string(slot.context.size()) + " positions");
    }
    slot = SamplingSlot();
  }
  slot.context.insert(slot.context.end(), s.tokens.begin(), s.tokens.end());
}

Executor::SamplingSlot& Executor::history_for(const PlannedSequence& s, std::uint64_t& draw_step) {
  const SequenceSampling& sampling = *s.sampling;
  SamplingSlot& slot = slots_[s.id];
  const auto context = static_cast<std::int64_t>(slot.context.size());
  const std::int64_t prompt = std::min(sampling.prompt_tokens, context);
  // The history grows with the context: built once the prompt is complete, then
  // extended by each generated token as it is fed back.
  if (!slot.history_built) {
    slot.history = TokenHistory(std::span(slot.context).first(static_cast<std::size_t>(prompt)));
    slot.history_built = true;
  }
  const auto recorded =
      static_cast<std::int64_t>(slot.history.prompt().size() + slot.history.output().size());
  for (std::int64_t p = recorded; p < context; ++p)
    slot.history.append(slot.context[static_cast<std::size_t>(p)]);

  draw_step = static_cast<std::uint64_t>(context - prompt);
  return slot;
}

SampleResult Executor::sample(const PlannedSequence& s, std::span<const float> logits) {
  std::uint64_t draw_step = 0;
  const SamplingSlot& slot = history_for(s, draw_step);
  Rng rng(s.sampling->seed);
  rng.set_step(draw_step);
  return sampler_.sample(logits, s.sampling->params, slot.history, rng);
}

SampleRow Executor::device_sample_row(const PlannedSequence& s,
                                      std::deque<std::vector<std::int32_t>>& lists) {
  std::uint64_t draw_step = 0;
  const SamplingSlot& slot = history_for(s, draw_step);
  return make_sample_row(s.sampling->params, slot.history, s.sampling->seed, draw_step, lists);
}

bool Executor::samples_on_backend(const std::shared_ptr<const SequenceSampling>& sampling) const {
  // Every stage reads the same plan; only the one with the output head samples.
  return backend_samples_ && last() && sampling != nullptr && !sampling->params.logprobs;
}

}  // namespace conveyor
