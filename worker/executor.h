// Executor: one pipeline stage's compute. It holds the weights of a contiguous layer
// range and the K/V storage for those layers, runs a StepPlan over them, and hands
// on either the hidden states (to the next stage) or, on the last stage, one sampled
// token per sampling sequence.
//
// Block tables come in the plan: the coordinator's block ledger places every
// sequence's K/V, identically on every stage; the executor only stores.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <unordered_map>
#include <vector>

#include "common/model_source.h"
#include "kernels/backend.h"
#include "worker/kv_cache.h"
#include "worker/kv_swapper.h"
#include "worker/llama_model.h"
#include "worker/model_weights.h"
#include "worker/sampling/sampler.h"
#include "worker/sampling/token_history.h"
#include "worker/step_plan.h"
#include "worker/weight_budget.h"

namespace conveyor {

struct KvGeometry {
  // 0: as many blocks as the backend's memory holds once the weights are loaded,
  // keeping `reserve_bytes` free for activations, for each of the backend's lanes
  // (device backends size the cache so).
  std::int64_t num_blocks = 0;
  std::int64_t block_size = 16;
  std::uint64_t reserve_bytes = 0;
  DType dtype = DType::kF32;  // K/V element type
  KvSwapTiers swap{};         // where preempted sequences' K/V wait (none by default)
};

struct StageResult {
  std::vector<float> hidden;          // f32 [tokens, hidden]; stages before the last
  std::vector<SampledToken> samples;  // the last stage: one per sampling sequence
};

// A plan Executor::start() has launched and Executor::finish() has not yet taken.
class StartedRun {
 public:
  StartedRun();
  ~StartedRun();
  StartedRun(const StartedRun&) = delete;
  StartedRun& operator=(const StartedRun&) = delete;
  // finish() would not wait for the backend.
  bool ready() const;
  // Waits for the backend's end of the step (finish() does too): timed apart, the wait
  // shows what is the device's time and what the host's.
  void wait();

 private:
  friend class Executor;
  const StepPlan* plan_ = nullptr;
  std::unique_ptr<LaunchedStep> launched_;  // null for a step with nothing to compute
};

class Executor {
 public:
  // Loads the weights of `layers` from `source` through `backend` and allocates K/V
  // storage for `kv` blocks; layers beyond `weight_budget` are streamed in
  // (WeightStore). Throws Error as WeightStore and KvCache do.
  Executor(Backend& backend, const ModelSource& source, LayerRange layers, KvGeometry kv,
           WeightBudget weight_budget = {});
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  LayerRange layers() const { return model_->weights().layers(); }
  bool first() const { return model_->weights().has_embedding(); }
  bool last() const { return model_->weights().has_output(); }
  const ModelSpec& spec() const { return model_->spec(); }
  std::uint64_t weight_bytes() const { return model_->weights().resident_bytes(); }
  const WeightStore& weight_store() const { return model_->weight_store(); }
  std::int64_t kv_blocks() const { return cache_->config().num_blocks; }
  const KvSwapper& swapper() const { return *swapper_; }

  // Runs the plan: its swaps in order, then drops the released sequences, then computes
  // its sequences (none: an empty result). `hidden_in` is the previous stage's output
  // (empty on the first stage). Throws Error on a malformed plan, a failed swap or a
  // backend failure.
  // `next`, when known, is the plan this stage runs after this one: its swap-ins start
  // reading ahead.
  StageResult run(const StepPlan& plan, const std::vector<float>& hidden_in,
                  const StepPlan* next = nullptr);

  // run() in two halves, so that the host prepares one step while a device backend
  // runs another: start() does everything but wait for the backend, finish() waits and
  // hands the result over. `plan` must stay until finish(). Runs finish in the order
  // they started, each before the next-but-one starts; sequences of two runs in flight
  // together must differ (the scheduler's micro-batches do). Throws as run() does.
  // `lane`: the backend's queue for the step (LlamaModel::launch), below lanes().
  std::unique_ptr<StartedRun> start(const StepPlan& plan, const std::vector<float>& hidden_in,
                                    const StepPlan* next = nullptr, int lane = 0);
  int lanes() const { return model_->lanes(); }
  StageResult finish(StartedRun& run);

 private:
  // What the last stage remembers of a sequence between steps: its context so far,
  // as the penalties see it. The random draw needs no state: it is a function of
  // (seed, tokens generated).
  struct SamplingSlot {
    std::vector<std::int32_t> context;
    TokenHistory history;
    bool history_built = false;
  };

  void record_context(const PlannedSequence& s);
  // The sequence's slot with its history up to date, and the step of its random draw.
  SamplingSlot& history_for(const PlannedSequence& s, std::uint64_t& draw_step);
  SampleResult sample(const PlannedSequence& s, std::span<const float> logits);
  // The row the backend samples for the sequence; its output token and count lists go
  // into `lists`, which must outlive the row.
  SampleRow device_sample_row(const PlannedSequence& s,
                              std::deque<std::vector<std::int32_t>>& lists);
  bool samples_on_backend(const std::shared_ptr<const SequenceSampling>& sampling) const;

  std::unique_ptr<KvCache> cache_;
  std::unique_ptr<KvSwapper> swapper_;
  std::unique_ptr<LlamaModel> model_;
  Sampler sampler_;
  bool backend_samples_ = false;  // Backend::sample where the logits are
  std::unordered_map<std::int64_t, SamplingSlot> slots_;
};

}  // namespace conveyor
