// Greedy choice per logit row on the device, so that a greedy step moves one index per
// sequence to the host instead of the vocabulary's logits.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"

namespace conveyor::cuda {
namespace {

constexpr int kThreads = 1024;

// The better of two (value, index) candidates: the larger value, then the lower
// index; NaN never wins because comparisons with it are false.
__device__ void keep_better(float& value, int& index, float other_value, int other_index) {
  if (other_value > value ||
      (other_value == value && other_index >= 0 && (index < 0 || other_index < index))) {
    value = other_value;
    index = other_index;
  }
}

__global__ void argmax_kernel(const float* logits, std::int64_t vocab, std::int32_t* out) {
  const float* row = logits + blockIdx.x * vocab;
  float best = -INFINITY;
  int best_index = -1;
  for (std::int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    // Strictly greater: a thread's own candidates come in rising index order.
    if (row[i] > best) {
      best = row[i];
      best_index = static_cast<int>(i);
    }
  }
  for (int offset = 16; offset > 0; offset /= 2) {
    const float v = __shfl_xor_sync(0xffffffffu, best, offset);
    const int j = __shfl_xor_sync(0xffffffffu, best_index, offset);
    keep_better(best, best_index, v, j);
  }
  __shared__ float warp_best[kThreads / 32];
  __shared__ int warp_index[kThreads / 32];
  if (threadIdx.x % 32 == 0) {
    warp_best[threadIdx.x / 32] = best;
    warp_index[threadIdx.x / 32] = best_index;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kThreads / 32; ++w)
      keep_better(best, best_index, warp_best[w], warp_index[w]);
    out[blockIdx.x] = best_index;  // -1: nothing above -inf
  }
}

}  // namespace

void argmax_rows(const float* logits, std::int64_t rows, std::int64_t vocab, std::int32_t* out,
                 cudaStream_t stream) {
  if (rows == 0) return;
  argmax_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(logits, vocab, out);
  CONVEYOR_CUDA_LAUNCHED();
}

}  // namespace conveyor::cuda
