// Launchers of the CUDA backend's kernels, one per Backend op (kernels/backend.h gives
// each op's contract; the CPU backend is each kernel's twin and its reference in
// tests/gpu). Every launcher queues work on `stream` and returns; none synchronises.
// Pointers are device memory unless named host_.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/sample_failure.h"

namespace conveyor::cuda {

// One sequence of a step as the kernels read it (a device copy of AttentionSequence).
struct DeviceSequence {
  std::int32_t first_row;
  std::int32_t num_new;
  std::int32_t start_position;
  std::int32_t table_offset;  // into the step's concatenated block tables
  std::int32_t table_length;
};

// A step's metadata in device memory (see CudaStep).
struct DeviceStep {
  const std::int32_t* tokens = nullptr;        // [T]
  const std::int32_t* positions = nullptr;     // [T]
  const std::int64_t* slots = nullptr;         // [T]
  const std::int32_t* row_sequence = nullptr;  // [T]: index into sequences, -1 for none
  const DeviceSequence* sequences = nullptr;   // [S]
  const std::int32_t* block_tables = nullptr;
  const std::int64_t* logit_rows = nullptr;  // [L]
  // The rows of sequences with one new token, and the first row of each run of at most
  // kPrefillGroupRows consecutive rows of one sequence with more: the tensor-core
  // attention gives the first a block each and the second a block per run, whose warps
  // share each K/V tile.
  const std::int32_t* decode_rows = nullptr;     // [num_decode_rows]
  const std::int32_t* prefill_groups = nullptr;  // [num_prefill_groups]
  std::int32_t num_tokens = 0;
  std::int32_t num_sequences = 0;
  std::int32_t num_logit_rows = 0;
  std::int32_t num_decode_rows = 0;
  std::int32_t num_prefill_groups = 0;
};

// Rows of one sequence whose attention one block computes together (DeviceStep).
constexpr int kPrefillGroupRows = 8;

// f32 -> bf16 (round to nearest even), n values.
void convert_to_bf16(const float* in, __nv_bfloat16* out, std::int64_t n, cudaStream_t stream);
// f32 -> f16 (round to nearest even), saturating at +-65504 rather than overflowing.
void convert_to_f16(const float* in, __half* out, std::int64_t n, cudaStream_t stream);

// y[r, :] += bias for every row.
void add_bias(float* y, const float* bias, std::int64_t rows, std::int64_t cols,
              cudaStream_t stream);

// Row r of the input is x[rows_index ? rows_index[r] : r]. With residual_add (only
// without rows_index), x += residual_add first and the sum is kept in x. Then
// out[r] = x / rms(x) * weight, the sum of squares in double as the CPU twin does.
void rmsnorm(float* x, const float* residual_add, const std::int64_t* rows_index, std::int64_t rows,
             std::int64_t cols, const float* weight, float eps, float* out, cudaStream_t stream);

// out = silu(gate) * up over n values; out may alias gate.
void swiglu(const float* gate, const float* up, std::int64_t n, float* out, cudaStream_t stream);
// The same over bf16 values, computed in f32 and rounded once; out may alias gate.
void swiglu_bf16(const __nv_bfloat16* gate, const __nv_bfloat16* up, std::int64_t n,
                 __nv_bfloat16* out, cudaStream_t stream);

// out[t] = table[tokens[t]] widened to f32; table is [vocab, cols] of f32 or bf16.
void embed_f32(const float* table, const DeviceStep& step, std::int64_t cols, float* out,
               cudaStream_t stream);
void embed_bf16(const __nv_bfloat16* table, const DeviceStep& step, std::int64_t cols, float* out,
                cudaStream_t stream);
void embed_f16(const __half* table, const DeviceStep& step, std::int64_t cols, float* out,
               cudaStream_t stream);

struct DeviceRope {
  const float* inv_freq = nullptr;  // [head_dim / 2]
  std::int32_t num_heads = 0;
  std::int32_t num_kv_heads = 0;
  std::int32_t head_dim = 0;
  bool interleaved = false;  // pairs (2i, 2i+1) instead of (i, i + d/2)
};

// Rotates q [T, heads * head_dim] and k [T, kv_heads * head_dim] in place; either may
// be null.
void rope(float* q, float* k, const DeviceStep& step, const DeviceRope& rope, cudaStream_t stream);

// The element types of a K/V cache.
enum class KvType : std::uint8_t {
  kF32,
  kBf16,
  // FP8 E4M3 codes, with one f32 scale per (slot, K/V head) beside them: each head's row
  // quantised with its own max|x| / 448 (quant::quantize_rows_e4m3 on that row).
  kFp8,
};

// One layer's K/V cache as the kernels write it.
struct DeviceKv {
  void* k = nullptr;
  void* v = nullptr;
  float* k_scales = nullptr;  // kFp8: [slots, num_kv_heads]
  float* v_scales = nullptr;
  std::int64_t kv_dim = 0;
  std::int32_t num_kv_heads = 0;
  KvType type = KvType::kF32;
};

// Row t of k and v [T, kv_dim] into slot slots[t] of the layer's caches: as f32,
// rounded to bf16, or quantised per head to E4M3 with the head's scale.
void store_kv(const float* k, const float* v, const DeviceStep& step, const DeviceKv& cache,
              cudaStream_t stream);

struct DeviceAttention {
  std::int32_t num_heads = 0;
  std::int32_t num_kv_heads = 0;
  std::int32_t head_dim = 0;
  float scale = 0;
  std::int32_t sliding_window = 0;
  std::int32_t block_size = 0;
  std::int64_t kv_dim = 0;
  KvType kv_type = KvType::kF32;
  const float* k_scales = nullptr;  // kFp8: [slots, num_kv_heads]
  const float* v_scales = nullptr;
  // Key passes whose loads the tiled kernel issues before scoring them: 2 or 4 (more
  // bytes in flight, more registers).
  std::int32_t passes = 2;
  // bf16 and FP8 K/V at head_dim 64, 128 and 256 run on the tensor cores
  // (mma_paged_attention) unless this is false.
  bool tensor_cores = true;
  // Tiles of keys each warp of the tensor-core decode kernel copies ahead, plus one: 0 for
  // its default (2 to 4 by head size and type), or 2 (a tuning comparison: the next tile's
  // copy then starts only after the current one's work). The prefill kernel keeps its own.
  std::int32_t stages = 0;
};

// Per row of logits [rows, vocab]: the lowest index of the largest value (NaN never),
// -1 when nothing is above -inf; out is int32 [rows] in device memory.
void argmax_rows(const float* logits, std::int64_t rows, std::int64_t vocab, std::int32_t* out,
                 cudaStream_t stream);

// One row of Backend::sample (its SampleRow), with its history as offsets into the
// op's token and count arrays.
struct DeviceSampleRow {
  double uniform = 0.0;
  float temperature = 1.0f;
  std::int32_t top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  std::int32_t greedy = 0;
  std::int32_t seen_offset = 0;  // distinct tokens seen: history_tokens[offset, + count)
  std::int32_t seen_count = 0;
  std::int32_t output_offset = 0;  // distinct output tokens and their counts
  std::int32_t output_count = 0;
};

// out[r] = the token row r of logits [rows, vocab] draws (sampling.cu), or a
// kSample* failure; the rows' logits are penalised in place.
void sample_rows(float* logits, std::int64_t vocab, const DeviceSampleRow* rows,
                 std::int32_t num_rows, const std::int32_t* history_tokens,
                 const std::int32_t* history_counts, std::int32_t* out, cudaStream_t stream);

// Largest head_dim and query heads per K/V head the attention kernel takes.
constexpr int kMaxHeadDim = 256;
constexpr int kMaxGroup = 8;

// Paged causal GQA attention of every row that belongs to a sequence (see
// Backend::attention). One block per (row, K/V head): the group's query heads share
// each K/V row read.
void paged_attention(const float* q, const void* k_cache, const void* v_cache,
                     const DeviceStep& step, const DeviceAttention& config, float* out,
                     cudaStream_t stream);

// The same on the tensor cores (mma_attention.cu), for bf16 and FP8 K/V at head_dim 64,
// 128 or 256 with at most 8 query heads per K/V head; false, launching nothing, for any
// other shape or type. paged_attention calls it first unless config.tensor_cores is false.
bool mma_paged_attention(const float* q, const void* k_cache, const void* v_cache,
                         const DeviceStep& step, const DeviceAttention& config, float* out,
                         cudaStream_t stream);

}  // namespace conveyor::cuda
