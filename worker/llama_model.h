// The Llama-family forward pass (Llama 2/3, Mistral, Qwen2, SmolLM2, TinyLlama): one
// block implementation parameterised by ModelSpec, run over a layer range on a
// Backend, with K/V in a paged KvCache.
//
// One forward() call is one batch step: several sequences, each with a run of new
// tokens (a prefill chunk of any length or a single decode token) at consecutive
// positions after the ones already cached. Every op runs once over all tokens of the
// step, so a decode step for a whole batch reads the weights once.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "kernels/backend.h"
#include "worker/kv_cache.h"
#include "worker/model_weights.h"
#include "worker/weight_store.h"

namespace conveyor {

// kGreedy: the last position's greedy token only (Backend::argmax), without moving
// its logits off the backend. kSampled: the last position's token drawn where its
// logits are, by the SampleRow given with the step (Backend::sample; only where the
// backend's capabilities say it samples).
enum class LogitsWanted { kNone, kLast, kAll, kGreedy, kSampled };

struct SequenceStep {
  std::span<const std::int32_t> tokens;  // the new tokens, at least one
  std::int64_t start_position = 0;       // positions already in the cache
  // Blocks covering start_position + tokens.size() positions (KvCache::block_table).
  std::span<const std::int32_t> block_table;
  LogitsWanted logits = LogitsWanted::kLast;
};

struct StepResult {
  // f32 [rows, vocab]: the rows each sequence asked for, sequences in order; sequence
  // i owns rows [logits_begin[i], logits_begin[i + 1]).
  std::vector<float> logits;
  std::vector<std::int64_t> logits_begin;  // size: sequences + 1
  // Per sequence: the greedy token of a kGreedy sequence (-1: no logit above -inf);
  // unused for the others. A kGreedy sequence owns no logit rows.
  std::vector<std::int32_t> greedy;
  // Per sequence: the token a kSampled sequence drew, or a kSample* failure
  // (kernels/sample_failure.h); unused for the others, which own no logit rows.
  std::vector<std::int32_t> sampled;
  // f32 [tokens, hidden]: the residual stream after the last layer held, for the next
  // pipeline stage; filled only when this range has no output head.
  std::vector<float> hidden;

  std::span<const float> row(std::int64_t r, std::int64_t vocab) const {
    return std::span<const float>(logits).subspan(static_cast<std::size_t>(r * vocab),
                                                  static_cast<std::size_t>(vocab));
  }
};

// A step launch() has queued on the backend and finish() has not yet taken: the host
// may prepare the next step meanwhile.
struct LaunchedStep {
  std::unique_ptr<BackendStep> step;          // its metadata stays until its ops have run
  StepResult result;                          // the tokens land in it at finish()
  std::vector<std::size_t> greedy_sequences;  // the sequences of greedy_out's entries
  std::vector<std::int32_t> greedy_out;       // written by the backend until the fence
  std::vector<std::size_t> sampled_sequences;
  std::vector<std::int32_t> sampled_out;
  std::unique_ptr<BackendFence> fence;  // after the step's last op
};

class LlamaModel {
 public:
  // `cache` must hold as many layers as `weights`, with the spec's kv_dim; both must
  // outlive the model.
  LlamaModel(Backend& backend, ModelWeights weights, KvCache& cache);
  // As above, with the layers that do not fit the store's budget streamed in.
  LlamaModel(Backend& backend, std::unique_ptr<WeightStore> weights, KvCache& cache);
  ~LlamaModel();
  LlamaModel(const LlamaModel&) = delete;
  LlamaModel& operator=(const LlamaModel&) = delete;

  const ModelSpec& spec() const { return weights_.spec(); }
  // The resident weights (streamed layers are empty there).
  const ModelWeights& weights() const { return weights_; }
  const WeightStore& weight_store() const { return *store_; }
  KvCache& cache() { return cache_; }

  // Runs one step. Writes the new tokens' K/V into the cache. `hidden_in`
  // (f32 [tokens, hidden], host memory) is the previous stage's output and is required
  // exactly when this range does not start at layer 0.
  // Throws Error(kInvalidArgument) for an empty step, an empty sequence, a block table
  // that does not cover the positions, a token outside the vocabulary.
  // `sample_rows`: row i draws the token of the i-th kSampled sequence, in step order;
  // one per such sequence, or Error(kInvalidArgument).
  StepResult forward(std::span<const SequenceStep> sequences, const float* hidden_in = nullptr,
                     std::span<const SampleRow> sample_rows = {});

  // forward() in two halves: launch() checks the step and queues its ops, returning
  // without waiting for a device backend; finish() waits for them and hands the result
  // over. A step's workspace (its lane's) holds what it leaves there (logits) until the
  // lane's next launch().
  // `lane`: the backend's queue the step's ops go to (Backend::use_lane), each with its
  // own workspace; two steps in flight on different lanes may run at once, and a lane's
  // next step may start only once its last one finished.
  std::unique_ptr<LaunchedStep> launch(std::span<const SequenceStep> sequences,
                                       const float* hidden_in = nullptr,
                                       std::span<const SampleRow> sample_rows = {}, int lane = 0);
  StepResult finish(LaunchedStep& launched);
  // The lanes launch() takes: the backend's, or one while layers are streamed (the
  // streamer uploads in one lane's order). lanes_for() says so before a model exists.
  int lanes() const { return static_cast<int>(workspaces_.size()); }
  static int lanes_for(const Backend& backend, const WeightStore& weights);

 private:
  struct Workspace;

  void run_layer(std::int64_t local, const LayerWeights& w, const BackendStep& step);
  // Embedding (on the first stage) and every layer.
  void run_body(const BackendStep& step);
  // Whether a step's layout may be padded and recorded (Backend::replay_step).
  bool recordable(const StepLayout& layout) const;
  // Runs a recorded-size step by replaying its size's recording on `lane`, recording
  // one first when due; false when the caller must run it as it is.
  bool replay_or_record(const BackendStep& step, int lane);
  // Grows the workspace to the step; true when it moved.
  bool ensure_workspace(std::int64_t tokens, std::int64_t logit_rows);

  Backend& backend_;
  std::unique_ptr<WeightStore> store_;
  const ModelWeights& weights_;  // store_->resident()
  KvCache& cache_;
  RopeConfig rope_;
  AttentionConfig attention_;
  std::vector<std::unique_ptr<Workspace>> workspaces_;  // one a lane
  Workspace* ws_ = nullptr;                             // the current lane's
  // Recorded steps of one size on one lane: how many came, how many recordings failed.
  struct Recorded {
    int steps = 0;
    int failures = 0;
  };
  static constexpr int kRecordingAttempts = 3;
  bool step_recording_ = false;     // the backend records steps
  bool recording_refused_ = false;  // an op could not be recorded: no more are tried
  std::map<std::pair<int, std::int64_t>, Recorded> recorded_;  // by lane and rows
};

}  // namespace conveyor
