#include "worker/llama_model.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "common/log/log.h"
#include "common/status.h"
#include "kernels/rope_config.h"
#include "worker/step_recording.h"

namespace conveyor {

// Activation buffers in backend memory, grown to the largest step seen.
struct LlamaModel::Workspace {
  std::int64_t token_capacity = 0;
  std::int64_t logit_capacity = 0;
  std::unique_ptr<BackendBuffer> hidden;  // f32 [tokens, hidden]: the residual stream
  std::unique_ptr<BackendBuffer> normed;  // f32 [tokens, hidden]
  std::unique_ptr<BackendBuffer> q;       // f32 [tokens, q_dim]
  std::unique_ptr<BackendBuffer> k;       // f32 [tokens, kv_dim]
  std::unique_ptr<BackendBuffer> v;       // f32 [tokens, kv_dim]
  std::unique_ptr<BackendBuffer> attn;    // f32 [tokens, q_dim]
  std::unique_ptr<BackendBuffer> delta;   // f32 [tokens, hidden]: attention output
  std::unique_ptr<BackendBuffer> gate;    // f32 [tokens, ff]: gate, then swiglu(gate, up)
  std::unique_ptr<BackendBuffer> up;      // f32 [tokens, ff]
  std::unique_ptr<BackendBuffer> logits;  // f32 [rows, vocab]
};

namespace {

void invalid(const std::string& message) {
  fail(ErrorCode::kInvalidArgument, message);
}

std::size_t f32_bytes(std::int64_t rows, std::int64_t cols) {
  return static_cast<std::size_t>(rows * cols) * sizeof(float);
}

}  // namespace

LlamaModel::LlamaModel(Backend& backend, ModelWeights weights, KvCache& cache)
    : LlamaModel(backend, std::make_unique<WeightStore>(std::move(weights)), cache) {}

LlamaModel::LlamaModel(Backend& backend, std::unique_ptr<WeightStore> weights, KvCache& cache)
    : backend_(backend),
      store_(std::move(weights)),
      weights_(store_->resident()),
      cache_(cache),
      workspaces_(1) {
  const ModelSpec& s = weights_.spec();
  if (cache.config().num_layers != weights_.layers().size() ||
      cache.config().kv_dim != s.kv_dim()) {
    invalid("kv cache of " + std::to_string(cache.config().num_layers) + " layers x " +
            std::to_string(cache.config().kv_dim) + " does not fit " +
            std::to_string(weights_.layers().size()) + " layers x " + std::to_string(s.kv_dim()));
  }
  rope_ = make_rope_config(s);
  attention_.num_heads = s.num_heads;
  attention_.num_kv_heads = s.num_kv_heads;
  attention_.head_dim = s.head_dim;
  // As transformers: head_dim ** -0.5, applied to the f32 scores.
  attention_.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.head_dim)));
  attention_.sliding_window = s.sliding_window;
  step_recording_ = backend.capabilities().step_recording;
  workspaces_.resize(static_cast<std::size_t>(lanes_for(backend, *store_)));
  for (auto& ws : workspaces_)
    ws = std::make_unique<Workspace>();
  ws_ = workspaces_.front().get();
}

LlamaModel::~LlamaModel() = default;

int LlamaModel::lanes_for(const Backend& backend, const WeightStore& weights) {
  return weights.streamed_layers() > 0 ? 1 : std::max(1, backend.capabilities().lanes);
}

bool LlamaModel::ensure_workspace(std::int64_t tokens, std::int64_t logit_rows) {
  const ModelSpec& s = spec();
  Workspace& ws = *ws_;
  const bool grows = tokens > ws.token_capacity;
  if (grows) {
    // Grow geometrically so a run of slightly larger steps does not reallocate each time.
    const std::int64_t n = std::max(tokens, ws.token_capacity * 2);
    ws.hidden = backend_.allocate(f32_bytes(n, s.hidden_size));
    ws.normed = backend_.allocate(f32_bytes(n, s.hidden_size));
    ws.q = backend_.allocate(f32_bytes(n, s.q_dim()));
    ws.k = backend_.allocate(f32_bytes(n, s.kv_dim()));
    ws.v = backend_.allocate(f32_bytes(n, s.kv_dim()));
    ws.attn = backend_.allocate(f32_bytes(n, s.q_dim()));
    ws.delta = backend_.allocate(f32_bytes(n, s.hidden_size));
    ws.gate = backend_.allocate(f32_bytes(n, s.intermediate_size));
    ws.up = backend_.allocate(f32_bytes(n, s.intermediate_size));
    ws.token_capacity = n;
  }
  if (logit_rows > ws.logit_capacity) {
    const std::int64_t n = std::max(logit_rows, ws.logit_capacity * 2);
    ws.logits = backend_.allocate(f32_bytes(n, s.vocab_size));
    ws.logit_capacity = n;
  }
  return grows;
}

StepResult LlamaModel::forward(std::span<const SequenceStep> sequences, const float* hidden_in,
                               std::span<const SampleRow> sample_rows) {
  const std::unique_ptr<LaunchedStep> launched = launch(sequences, hidden_in, sample_rows, 0);
  return finish(*launched);
}

StepResult LlamaModel::finish(LaunchedStep& launched) {
  launched.fence->wait();
  StepResult& result = launched.result;
  // Without an output head (a stage before the last) no token was drawn.
  for (std::size_t g = 0; g < launched.greedy_out.size(); ++g)
    result.greedy[launched.greedy_sequences[g]] = launched.greedy_out[g];
  for (std::size_t r = 0; r < launched.sampled_out.size(); ++r)
    result.sampled[launched.sampled_sequences[r]] = launched.sampled_out[r];
  return std::move(result);
}

std::unique_ptr<LaunchedStep> LlamaModel::launch(std::span<const SequenceStep> sequences,
                                                 const float* hidden_in,
                                                 std::span<const SampleRow> sample_rows, int lane) {
  const ModelSpec& s = spec();
  if (lane < 0 || lane >= lanes()) {
    invalid("launch: lane " + std::to_string(lane) + " of " + std::to_string(lanes()));
  }
  if (lanes() > 1) backend_.use_lane(lane);
  ws_ = workspaces_[static_cast<std::size_t>(lane)].get();
  if (sequences.empty()) invalid("forward: a step needs at least one sequence");
  if (weights_.has_embedding() == (hidden_in != nullptr)) {
    invalid(weights_.has_embedding()
                ? "forward: the first stage takes tokens, not hidden states"
                : "forward: a later stage needs the previous stage's hidden states");
  }

  // Step metadata: one token, position and cache slot per row, one attention entry
  // and the wanted logit rows per sequence.
  StepLayout layout;
  layout.sequences.reserve(sequences.size());
  auto launched = std::make_unique<LaunchedStep>();
  StepResult& result = launched->result;
  result.logits_begin.reserve(sequences.size() + 1);
  const std::int64_t block_size = cache_.config().block_size;
  // Logit rows: every row a sequence wants in full first, in sequence order, then the
  // last rows of kGreedy sequences, whose argmax alone leaves the backend.
  std::vector<std::int64_t> greedy_rows;
  std::vector<std::int64_t> sampled_rows;  // kSampled: after the greedy rows
  result.greedy.assign(sequences.size(), -1);
  result.sampled.assign(sequences.size(), kSampleNothing);
  for (const SequenceStep& seq : sequences) {
    const auto n = static_cast<std::int64_t>(seq.tokens.size());
    if (n == 0) invalid("forward: a sequence with no new tokens");
    if (seq.start_position < 0 ||
        seq.start_position > std::numeric_limits<std::int32_t>::max() - n) {
      invalid("forward: start position out of range");
    }
    const std::int64_t end = seq.start_position + n;
    if (static_cast<std::int64_t>(seq.block_table.size()) * block_size < end) {
      invalid("forward: block table holds " +
              std::to_string(static_cast<std::int64_t>(seq.block_table.size()) * block_size) +
              " positions, the step needs " + std::to_string(end));
    }
    const std::int64_t first_row = layout.num_tokens();
    layout.sequences.push_back({first_row, n, seq.start_position, seq.block_table});
    result.logits_begin.push_back(static_cast<std::int64_t>(layout.logit_rows.size()));
    if (seq.logits == LogitsWanted::kGreedy) {
      greedy_rows.push_back(first_row + n - 1);
      launched->greedy_sequences.push_back(layout.sequences.size() - 1);
    }
    if (seq.logits == LogitsWanted::kSampled) {
      sampled_rows.push_back(first_row + n - 1);
      launched->sampled_sequences.push_back(layout.sequences.size() - 1);
    }
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t position = seq.start_position + i;
      layout.tokens.push_back(seq.tokens[static_cast<std::size_t>(i)]);
      layout.positions.push_back(static_cast<std::int32_t>(position));
      layout.slots.push_back(seq.block_table[static_cast<std::size_t>(position / block_size)] *
                                 block_size +
                             position % block_size);
      if (seq.logits == LogitsWanted::kAll || (seq.logits == LogitsWanted::kLast && i == n - 1)) {
        layout.logit_rows.push_back(first_row + i);
      }
    }
  }
  result.logits_begin.push_back(static_cast<std::int64_t>(layout.logit_rows.size()));
  const auto full_rows = static_cast<std::int64_t>(layout.logit_rows.size());
  layout.logit_rows.insert(layout.logit_rows.end(), greedy_rows.begin(), greedy_rows.end());
  layout.logit_rows.insert(layout.logit_rows.end(), sampled_rows.begin(), sampled_rows.end());
  if (!sampled_rows.empty() && !weights_.has_output()) {
    invalid("forward: sampling needs the stage with the output head");
  }
  if (sample_rows.size() != sampled_rows.size()) {
    invalid("forward: " + std::to_string(sample_rows.size()) + " sample rows for " +
            std::to_string(sampled_rows.size()) + " sampled sequences");
  }
  const std::int64_t sampled_first_row = full_rows + static_cast<std::int64_t>(greedy_rows.size());
  const std::int64_t tokens = layout.num_tokens();
  const auto logit_rows = static_cast<std::int64_t>(layout.logit_rows.size());
  const std::int64_t padded = recordable(layout) ? recorded_rows(tokens) : 0;
  if (padded > 0) pad_for_recording(layout, padded);
  // A workspace that moves takes the recordings' addresses with it.
  if (ensure_workspace(std::max(tokens, padded), logit_rows)) backend_.forget_step_recordings();
  Workspace& ws = *ws_;
  launched->step = backend_.prepare_step(std::move(layout));
  const BackendStep& step = *launched->step;

  // The step's ops, then its results' copies to the host, all queued.
  const auto queue = [&] {
    if (weights_.has_embedding()) {
      if (padded == 0 || !replay_or_record(step, lane)) run_body(step);
    } else {
      backend_.copy_from_host(ws.hidden->data(), hidden_in, f32_bytes(tokens, s.hidden_size));
      run_body(step);
    }

    if (!weights_.has_output()) {
      result.hidden.resize(static_cast<std::size_t>(tokens * s.hidden_size));
      backend_.copy_to_host_deferred(result.hidden.data(), ws.hidden->data(),
                                     f32_bytes(tokens, s.hidden_size));
      return;
    }
    if (logit_rows > 0) {
      backend_.logits(ws.hidden->floats(), step, weights_.output_norm(),
                      static_cast<float>(s.rms_norm_eps), weights_.output(), ws.logits->floats());
      result.logits.resize(static_cast<std::size_t>(full_rows * s.vocab_size));
      if (full_rows > 0) {
        backend_.copy_to_host_deferred(result.logits.data(), ws.logits->data(),
                                       result.logits.size() * sizeof(float));
      }
      // The tokens wait where the backend puts them until the fence: the logits stay
      // on the device, and the host does not wait here.
      if (!greedy_rows.empty()) {
        launched->greedy_out.assign(greedy_rows.size(), -1);
        backend_.argmax_deferred(ws.logits->floats() + full_rows * s.vocab_size,
                                 static_cast<std::int64_t>(greedy_rows.size()), s.vocab_size,
                                 launched->greedy_out.data());
      }
      if (!sampled_rows.empty()) {
        launched->sampled_out.assign(sampled_rows.size(), kSampleNothing);
        backend_.sample_deferred(ws.logits->floats() + sampled_first_row * s.vocab_size,
                                 s.vocab_size, sample_rows, launched->sampled_out.data());
      }
    }
  };
  try {
    queue();
  } catch (...) {
    // Copies queued for this step would land in its result, which goes with it: a
    // fence taken and dropped releases them unlanded.
    try {
      backend_.fence();
    } catch (const Error&) {
      // The first error is the one to report.
    }
    throw;
  }
  launched->fence = backend_.fence();
  return launched;
}

bool LlamaModel::recordable(const StepLayout& layout) const {
  // Decode steps of the first stage with every layer resident: their ops and addresses
  // repeat from step to step.
  if (!step_recording_ || recording_refused_ || !weights_.has_embedding() ||
      store_->streamed_layers() > 0) {
    return false;
  }
  if (layout.sequences.size() != layout.positions.size()) return false;
  // A replayed step skips the ops' own checks of its tokens and blocks: such a step
  // runs as it is, and fails there.
  const std::int64_t vocab = spec().vocab_size;
  for (const std::int32_t token : layout.tokens) {
    if (token < 0 || token >= vocab) return false;
  }
  const std::int64_t blocks = cache_.config().num_blocks;
  for (const AttentionSequence& seq : layout.sequences) {
    for (const std::int32_t block : seq.block_table) {
      if (block < 0 || block >= blocks) return false;
    }
  }
  return true;
}

void LlamaModel::run_body(const BackendStep& step) {
  if (weights_.has_embedding()) backend_.embed(weights_.token_embd(), step, ws_->hidden->floats());
  for (std::int64_t l = 0; l < weights_.layers().size(); ++l) {
    const HeldLayer layer(*store_, l);
    run_layer(l, layer.weights(), step);
  }
}

bool LlamaModel::replay_or_record(const BackendStep& step, int lane) {
  if (backend_.replay_step(step)) return true;
  // The first step of a size on a lane runs as it is, so that the backend's scratch
  // memory grows to it before a recording fixes its addresses; the second is recorded.
  // A size whose recordings keep failing (memory that moved while recording, a graph
  // the driver would not make) runs as it is from then on.
  Recorded& seen = recorded_[{lane, step.layout().recorded_rows}];
  if (++seen.steps < 2 || seen.failures >= kRecordingAttempts) return false;
  try {
    backend_.begin_step_recording(step);
    run_body(step);
  } catch (...) {
    // The capture ends whatever went wrong, or every later op of the lane would fail.
    backend_.end_step_recording(step);
    // Run as it is, the step throws again if the error was its own.
    run_body(step);
    // Otherwise an op could not be recorded, and no step will be.
    recording_refused_ = true;
    log::warn(logger("model"),
              "step recording refused on " + backend_.name() + "; steps run unrecorded");
    return true;
  }
  if (backend_.end_step_recording(step) && backend_.replay_step(step)) return true;
  ++seen.failures;
  return false;
}

void LlamaModel::run_layer(std::int64_t local, const LayerWeights& w, const BackendStep& step) {
  const std::int64_t tokens = step.layout().num_tokens();
  const ModelSpec& s = spec();
  Workspace& ws = *ws_;
  const auto eps = static_cast<float>(s.rms_norm_eps);
  float* hidden = ws.hidden->floats();  // f32 [tokens, hidden]
  float* normed = ws.normed->floats();  // f32 [tokens, hidden]

  // Attention block: x += W_o attn(rope(W_q n), rope(W_k n), W_v n), n = norm(x).
  backend_.rmsnorm(hidden, nullptr, tokens, *w.attn_norm, eps, normed);
  backend_.gemm(normed, tokens, *w.attn_q, ws.q->floats(), {w.attn_q_bias.get(), false});
  backend_.gemm(normed, tokens, *w.attn_k, ws.k->floats(), {w.attn_k_bias.get(), false});
  backend_.gemm(normed, tokens, *w.attn_v, ws.v->floats(), {w.attn_v_bias.get(), false});
  backend_.rope(ws.q->floats(), ws.k->floats(), step, rope_);
  const KvLayerView kv = cache_.layer(local);
  backend_.store_kv(ws.k->floats(), ws.v->floats(), step, kv);
  backend_.attention(ws.q->floats(), kv, step, attention_, ws.attn->floats());
  backend_.gemm(ws.attn->floats(), tokens, *w.attn_output, ws.delta->floats());

  // MLP block: x += W_down (silu(W_gate n) * W_up n), n = norm(x); the residual add of
  // the attention output is fused into this norm, the MLP's into the down projection.
  backend_.rmsnorm(hidden, ws.delta->floats(), tokens, *w.ffn_norm, eps, normed);
  backend_.swiglu_ffn(normed, tokens, *w.ffn_gate, *w.ffn_up, *w.ffn_down, ws.gate->floats(),
                      ws.up->floats(), hidden);
}

}  // namespace conveyor
