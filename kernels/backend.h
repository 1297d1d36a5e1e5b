// Backend: the ops the model code calls, one call per op per step over the whole
// micro-batch (never per token or per head), so that a device backend can launch one
// kernel per call. The CPU backend is the reference; a CUDA backend implements the
// same interface and is tested against it op by op.
//
// Memory spaces. Activations, KV blocks and logits live in backend memory: plain host
// memory for the CPU backend, device memory for a GPU backend. Ops take `float*` into
// that space; the model never dereferences them itself, it moves data in and out with
// copy_from_host()/copy_to_host(). Step metadata (token ids, positions, cache slots,
// block tables) is handed over once per step as a StepLayout; prepare_step() turns it
// into a BackendStep that every layer's ops then share (a device backend copies it to
// the device there, once, rather than once per op).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/dtype.h"
#include "common/model_spec.h"
#include "common/tensor_ref.h"
#include "kernels/host_pinning.h"
#include "kernels/sample_failure.h"

namespace conveyor {

// A block of backend memory, owned by whoever holds the pointer.
class BackendBuffer {
 public:
  virtual ~BackendBuffer() = default;
  virtual void* data() = 0;
  virtual std::size_t bytes() const = 0;
  float* floats() { return static_cast<float*>(data()); }
};

// A weight in the form the backend prefers (the CPU backend: GGUF block-quantised
// matrices stay quantised and are widened inside the GEMM, everything else is f32; a
// GPU backend may keep its own quantised copy in device memory). The model only
// passes it back.
class BackendWeight {
 public:
  virtual ~BackendWeight() = default;
  const std::string& name() const { return name_; }
  std::int64_t rows() const { return rows_; }  // out_features, or the length of a vector
  std::int64_t cols() const { return cols_; }  // in_features; 1 for a vector
  DType source_dtype() const { return source_dtype_; }
  virtual std::size_t resident_bytes() const = 0;

 protected:
  BackendWeight(std::string name, std::int64_t rows, std::int64_t cols, DType source_dtype)
      : name_(std::move(name)), rows_(rows), cols_(cols), source_dtype_(source_dtype) {}

 private:
  std::string name_;
  std::int64_t rows_;
  std::int64_t cols_;
  DType source_dtype_;
};

struct BackendCapabilities {
  bool device_memory = false;        // buffers are not host-addressable
  bool quantized_weights = false;    // keeps weights quantised instead of dequantising at load
  bool paged_attention = true;       // attention reads K/V through block tables
  int threads = 1;                   // CPU worker threads, including the caller
  std::vector<DType> weight_dtypes;  // stored types upload_weight() accepts
  std::vector<DType> kv_dtypes{DType::kF32};  // K/V cache element types
  bool sampling = false;                      // sample() draws where the logits are
  // Replays the recorded ops of decode steps (CUDA graphs; Backend::replay_step).
  bool step_recording = false;
  // Queues of ops that may run at once (Backend::use_lane); 1 for a synchronous backend.
  int lanes = 1;
};

// One row of Backend::sample, as the sampler specifies it (worker/sampling/sampler.h):
// penalties, then temperature, top-k, top-p and min-p, and a draw by inverse CDF with
// `uniform` over the survivors in id order.
struct SampleRow {
  bool greedy = false;  // the argmax of the penalised logits; the filters do not apply
  float temperature = 1.0f;
  std::int32_t top_k = 0;  // 0: off
  float top_p = 1.0f;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  double uniform = 0.0;                         // in [0, 1)
  std::span<const std::int32_t> seen_tokens;    // distinct tokens of prompt and output
  std::span<const std::int32_t> output_tokens;  // distinct output tokens
  std::span<const std::int32_t> output_counts;  // how often each of output_tokens came
};

struct BackendMemoryInfo {
  std::uint64_t total_bytes = 0;      // memory the backend allocates from
  std::uint64_t available_bytes = 0;  // what it could still allocate
  std::uint64_t weight_bytes = 0;     // held by weights it uploaded and that are alive
  std::uint64_t buffer_bytes = 0;     // held by buffers it allocated and that are alive
};

// Rotary embedding for one model: per-frequency inverse wavelengths, already scaled
// (linear, llama3, per-frequency factors). Built by make_rope_config() in
// kernels/rope_config.h.
struct RopeConfig {
  std::int64_t num_heads = 0;
  std::int64_t num_kv_heads = 0;
  std::int64_t head_dim = 0;
  RopePairing pairing = RopePairing::kHalfSplit;
  std::vector<float> inv_freq;  // [head_dim / 2]
};

// One layer's paged K/V storage in backend memory. Both K and V are
// [num_blocks, block_size, kv_dim] of `dtype` (one of capabilities().kv_dtypes);
// kv_dim = num_kv_heads * head_dim. Token at position p of a sequence lives in block
// block_table[p / block_size], row p % block_size; its "slot" is
// block * block_size + row. store_kv rounds the f32 rows it is given to `dtype`.
// With `dtype` kF8_R (the FP8 K/V cache) K and V hold E4M3 codes, one byte each, and
// every head of every slot has its own f32 scale in k_scales / v_scales
// ([num_blocks, block_size, num_kv_heads]): store_kv quantises each head's row with its
// own max|x| / 448, as quant::quantize_rows_e4m3 does a row.
struct KvLayerView {
  void* k = nullptr;
  void* v = nullptr;
  std::int64_t num_blocks = 0;
  std::int64_t block_size = 0;
  std::int64_t kv_dim = 0;
  DType dtype = DType::kF32;
  void* k_scales = nullptr;  // kF8_R only
  void* v_scales = nullptr;
  std::int64_t num_kv_heads = 0;  // kF8_R only: the rows a slot's scales cover
};

// One sequence's share of an attention call. Its new tokens occupy rows
// [first_row, first_row + num_new) of q and out, at positions start_position + i;
// the K/V of every position below start_position + num_new must already be stored.
struct AttentionSequence {
  std::int64_t first_row = 0;
  std::int64_t num_new = 0;
  std::int64_t start_position = 0;
  std::span<const std::int32_t> block_table;
};

// A slot that stores nothing: the K/V of a recorded step's padding rows.
inline constexpr std::int64_t kNoSlot = -1;

// The token layout of one batch step, in host memory: everything besides activations
// that embed, rope, store_kv, attention and logits need. Token t of the step is row t
// of every activation.
struct StepLayout {
  std::vector<std::int32_t> tokens;     // [T] token ids; empty on stages fed hidden states
  std::vector<std::int32_t> positions;  // [T]
  std::vector<std::int64_t> slots;      // [T] KV cache slot of each token (KvLayerView)
  std::vector<AttentionSequence> sequences;
  std::vector<std::int64_t> logit_rows;  // rows that logits() projects, in output order
  // > 0: a decode step of this many rows (padding included) whose ops a backend with
  // capabilities().step_recording may record and replay; every step of one such size
  // then keeps its metadata at the same device addresses.
  std::int64_t recorded_rows = 0;

  std::int64_t num_tokens() const { return static_cast<std::int64_t>(positions.size()); }
};

// A StepLayout as a backend keeps it for the ops of one step. The block tables the
// sequences point to must stay unchanged until the step's last op.
class BackendStep {
 public:
  virtual ~BackendStep() = default;
  const StepLayout& layout() const { return layout_; }

 protected:
  explicit BackendStep(StepLayout layout) : layout_(std::move(layout)) {}

 private:
  StepLayout layout_;
};

// A point in a backend's queue of ops (Backend::fence()). wait() returns once every
// op issued before it has finished and the deferred host writes issued before it
// (argmax_deferred, sample_deferred) have landed; ready() says whether wait() would
// return at once. A fence dropped unwaited still waits for those writes' buffers.
class BackendFence {
 public:
  virtual ~BackendFence() = default;
  virtual bool ready() = 0;
  virtual void wait() = 0;
};

struct AttentionConfig {
  std::int64_t num_heads = 0;
  std::int64_t num_kv_heads = 0;
  std::int64_t head_dim = 0;
  float scale = 0;                  // usually 1 / sqrt(head_dim)
  std::int64_t sliding_window = 0;  // > 0: query at position i sees keys j with i - j < window
};

struct GemmOptions {
  const BackendWeight* bias = nullptr;  // [n], added to every row
  bool accumulate = false;              // y += x W^T instead of y = x W^T (residual adds)
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string name() const = 0;  // "cpu", "cuda:0"
  virtual BackendCapabilities capabilities() const = 0;
  virtual BackendMemoryInfo memory_info() const = 0;

  // ---- memory ----
  // Zero-filled, aligned for vector loads.
  virtual std::unique_ptr<BackendBuffer> allocate(std::size_t bytes) = 0;
  virtual void copy_from_host(void* dst, const void* src, std::size_t bytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, std::size_t bytes) = 0;
  // As copy_to_host, but `dst` holds the bytes only after the next synchronize(): many
  // small copies (a K/V block's layers) then wait once.
  virtual void copy_to_host_async(void* dst, const void* src, std::size_t bytes) {
    copy_to_host(dst, src, bytes);
  }
  // Waits until every op issued so far has finished (a no-op for synchronous backends).
  virtual void synchronize() = 0;
  // Ops issued from now on go to queue `lane` (0 <= lane < capabilities().lanes): each
  // lane's ops run in order, two lanes' may run at once, synchronize() waits for all.
  // Whoever switches lanes keeps them apart: a lane's step may not read what another
  // lane's unfinished step writes. The default has one lane.
  virtual void use_lane(int lane);

  // A fence after every op issued so far on the current lane: the host goes on preparing the next
  // step while the device runs this one. The default, for synchronous backends, is a fence already
  // passed.
  virtual std::unique_ptr<BackendFence> fence();

  // Pins [data, data + bytes) of host memory for this backend's device until the handle
  // goes (release it before freeing the memory). nullptr where there is nothing to pin
  // for (a backend without device memory: the default). Pinning commits every page of
  // the range at once and keeps it out of swap. Throws Error with the driver's reason
  // when it refuses (out of lockable memory, a range already pinned): callers go on
  // unpinned, only slower.
  virtual std::unique_ptr<HostPinning> pin_host_memory(void* /*data*/, std::size_t /*bytes*/) {
    return nullptr;
  }
  // The same for memory the device only reads, such as a read-only mapping of a model
  // file (where the driver supports read-only registration; elsewhere this throws for
  // memory that is not writable).
  virtual std::unique_ptr<HostPinning> pin_host_memory_read_only(const void* /*data*/,
                                                                 std::size_t /*bytes*/) {
    return nullptr;
  }

  // A stored tensor (any dtype in capabilities().weight_dtypes) made ready for the ops
  // below. 2-D tensors are [rows, cols]; 1-D tensors are vectors (rows = length).
  // Throws Error(kUnsupported) for a dtype the backend cannot take.
  virtual std::shared_ptr<const BackendWeight> upload_weight(const TensorRef& tensor) = 0;

  // ---- ops ----
  // y = x W^T (+ bias), or y += ... with options.accumulate.
  // x: f32 [m, k]; w: [n, k]; y: f32 [m, n].
  virtual void gemm(const float* x, std::int64_t m, const BackendWeight& w, float* y,
                    const GemmOptions& options = {}) = 0;

  // out = x / rms(x) * weight, row by row; x, out: f32 [rows, weight.rows()].
  // With residual_add, first x += residual_add (x is the residual stream), then norm;
  // the updated x is kept. out may not alias x.
  virtual void rmsnorm(float* x, const float* residual_add, std::int64_t rows,
                       const BackendWeight& weight, float eps, float* out) = 0;

  // Checks a step's layout (consistent sizes, sequences within the rows, block tables
  // covering their positions) and keeps it for the ops below. Throws
  // Error(kInvalidArgument).
  virtual std::unique_ptr<BackendStep> prepare_step(StepLayout layout) = 0;

  // out[t] = table[tokens[t]]; table: [vocab, hidden]; out: f32 [T, hidden].
  // Throws Error(kInvalidArgument) for a token outside the table.
  virtual void embed(const BackendWeight& table, const BackendStep& step, float* out) = 0;

  // Rotates q and k in place, row t by positions[t].
  // q: f32 [T, num_heads * head_dim]; k: f32 [T, num_kv_heads * head_dim].
  virtual void rope(float* q, float* k, const BackendStep& step, const RopeConfig& config) = 0;

  // Writes row t of k and v (f32 [T, kv_dim]) to slot slots[t] of the layer.
  virtual void store_kv(const float* k, const float* v, const BackendStep& step,
                        const KvLayerView& layer) = 0;

  // Causal (optionally sliding-window) GQA attention of every new token over its own
  // sequence's cached K/V. q, out: f32 [T, num_heads * head_dim].
  virtual void attention(const float* q, const KvLayerView& layer, const BackendStep& step,
                         const AttentionConfig& config, float* out) = 0;

  // out = silu(gate) * up, elementwise over n values; out may alias gate.
  virtual void swiglu(const float* gate, const float* up, std::int64_t n, float* out) = 0;

  // The feed-forward block's products: out += W_down (silu(W_gate x) * W_up x), x f32
  // [m, hidden] (the normed rows), out f32 [m, hidden] (the residual stream). gate_work
  // and up_work are f32 [m, ff] that the op may overwrite. The default runs gemm, gemm,
  // swiglu and gemm through them; a backend may keep the intermediate narrower (CUDA: in
  // bf16 for bf16 weights, whose products round their inputs to bf16 anyway).
  virtual void swiglu_ffn(const float* x, std::int64_t m, const BackendWeight& gate,
                          const BackendWeight& up, const BackendWeight& down, float* gate_work,
                          float* up_work, float* out);

  // Final norm and output projection for the step's logit_rows of the residual stream.
  // hidden: f32 [T, hidden]; out: f32 [logit_rows.size(), vocab].
  virtual void logits(const float* hidden, const BackendStep& step, const BackendWeight& norm,
                      float eps, const BackendWeight& output, float* out) = 0;

  // Greedy choice without moving the logits: for each of `rows` rows of logits
  // (f32 [rows, vocab]), the lowest index of the largest value, NaN never chosen, or
  // -1 when no value is above -inf. Written to host memory; waits for the result.
  // Exactly the sampler's greedy argmax (worker/sampling/sampler.h).
  virtual void argmax(const float* logits, std::int64_t rows, std::int64_t vocab,
                      std::int32_t* host_out) = 0;

  // Where capabilities().sampling: for each row r of logits (f32 [rows.size(), vocab]),
  // the token rows[r] draws, exactly as the sampler would up to the rounding of sums, or
  // a kSample* failure (kernels/sample_failure.h). Written to host memory; waits for the
  // result. The rows' logits are penalised in place. Others throw Error(kUnsupported).
  virtual void sample(float* logits, std::int64_t vocab, std::span<const SampleRow> rows,
                      std::int32_t* host_out);

  // Recorded steps (capabilities().step_recording; CUDA graphs). For a step prepared
  // with recorded_rows > 0: replay_step() runs the ops recorded for steps of that size,
  // if a recording is still valid, and says whether it did. Otherwise the caller may
  // record: begin_step_recording(), the step's ops (queued, not run), then
  // end_step_recording(), which keeps the recording and says whether it did; only then
  // do the ops run, through replay_step(). A recording lives until
  // forget_step_recordings() or until the backend's memory under it changes. Steps of
  // one size on one lane share their metadata's memory: a step's ops must be queued
  // before the next step of its size and lane is prepared.
  virtual bool replay_step(const BackendStep& /*step*/) { return false; }
  virtual void begin_step_recording(const BackendStep& /*step*/) {}
  virtual bool end_step_recording(const BackendStep& /*step*/) { return false; }
  virtual void forget_step_recordings() {}

  // As copy_to_host(), argmax() and sample(), without waiting: `dst` and `host_out` hold
  // the result once a fence taken after the call has been waited on (or after
  // synchronize()), and must stay until then. The defaults wait, as synchronous backends
  // do anyway.
  virtual void copy_to_host_deferred(void* dst, const void* src, std::size_t bytes) {
    copy_to_host(dst, src, bytes);
  }
  virtual void argmax_deferred(const float* logits, std::int64_t rows, std::int64_t vocab,
                               std::int32_t* host_out) {
    argmax(logits, rows, vocab, host_out);
  }
  virtual void sample_deferred(float* logits, std::int64_t vocab, std::span<const SampleRow> rows,
                               std::int32_t* host_out) {
    sample(logits, vocab, rows, host_out);
  }
};

}  // namespace conveyor
