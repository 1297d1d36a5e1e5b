#include "kernels/cuda/quant_gemm.h"

#include <cuda_fp8.h>

#include <algorithm>

#include "kernels/cuda/cuda_check.h"

namespace conveyor::cuda {
namespace {

constexpr int kThreads = 128;  // four warps
constexpr int kTileN = 64;
constexpr int kTileK = 128;  // one int4 group
// Halves of padding per shared-memory row: a row of 136 halves is 68 words, so the eight
// rows and four column pairs a fragment load touches fall in 32 different banks.
constexpr int kRowStride = kTileK + 8;
constexpr int kQ4BlockBytes = 68;
constexpr int kMaxSplits = 16;

__device__ __forceinline__ std::uint32_t shared_pair(const __half* p) {
  return *reinterpret_cast<const std::uint32_t*>(p);
}

// d += a b for one 16x8x16 tile: a row-major 16x16, b column-major 16x8 (W's rows), f32 d.
__device__ __forceinline__ void mma_16816(float (&d)[4], const std::uint32_t (&a)[4],
                                          std::uint32_t b0, std::uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// q * d + m in f32, unfused as the CPU's dequantisation computes it.
__device__ __forceinline__ float q4_value(std::uint32_t q, float d, float m) {
  return __fadd_rn(__fmul_rn(static_cast<float>(q), d), m);
}

// The rows of x a block multiplies, one k tile at a time: loaded into registers while
// the previous tile is computed, then stored to shared memory.
template <int kTileM>
struct XTile {
  static constexpr int kChunks = kTileM * kTileK / 8 / kThreads;  // 16-byte chunks each
  uint4 chunk[kChunks];

  __device__ void load(const __half* x, std::int64_t m, std::int64_t k, std::int64_t row0,
                       std::int64_t k0) {
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int id = static_cast<int>(threadIdx.x) + i * kThreads;
      const std::int64_t row = row0 + id / 16;
      const std::int64_t col = k0 + (id % 16) * 8;
      chunk[i] = row < m && col < k ? __ldg(reinterpret_cast<const uint4*>(x + row * k + col))
                                    : make_uint4(0, 0, 0, 0);
    }
  }
  __device__ void store(__half* tile) const {
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int id = static_cast<int>(threadIdx.x) + i * kThreads;
      *reinterpret_cast<uint4*>(tile + (id / 16) * kRowStride + (id % 16) * 8) = chunk[i];
    }
  }
};

template <QuantLayout kLayout>
struct WTile;

// kQ8Rows: 16 int8 a chunk, widened to f16 (exact); the row scale comes at the end.
template <>
struct WTile<QuantLayout::kQ8Rows> {
  static constexpr int kChunks = kTileN * kTileK / 16 / kThreads;
  uint4 chunk[kChunks];

  __device__ void load(const QuantMatrix& w, std::int64_t n0, int kt) {
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int id = static_cast<int>(threadIdx.x) + i * kThreads;
      const std::int64_t row = n0 + id / 8;
      const std::int64_t col = static_cast<std::int64_t>(kt) * kTileK + (id % 8) * 16;
      chunk[i] = row < w.rows && col < w.cols
                     ? __ldg(reinterpret_cast<const uint4*>(w.data + row * w.cols + col))
                     : make_uint4(0, 0, 0, 0);
    }
  }
  __device__ void store(__half* tile) const {
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int id = static_cast<int>(threadIdx.x) + i * kThreads;
      const auto* q = reinterpret_cast<const std::int8_t*>(&chunk[i]);
      __half2 h[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        h[j] = __halves2half2(__int2half_rn(q[2 * j]), __int2half_rn(q[2 * j + 1]));
      }
      auto* dst = reinterpret_cast<uint4*>(tile + (id / 8) * kRowStride + (id % 8) * 16);
      dst[0] = *reinterpret_cast<const uint4*>(&h[0]);
      dst[1] = *reinterpret_cast<const uint4*>(&h[4]);
    }
  }
};

// kQ4Groups: a k tile is one 68-byte block per row; each thread takes one 4-byte word
// of nibbles (8 values) of eight rows, and the word holding the row's d and m.
template <>
struct WTile<QuantLayout::kQ4Groups> {
  static constexpr int kWords = kTileN * 16 / kThreads;
  std::uint32_t nibbles[kWords];
  std::uint32_t dm[kWords];

  __device__ void load(const QuantMatrix& w, std::int64_t n0, int kt) {
    const std::int64_t blocks_per_row = w.cols / kTileK;
#pragma unroll
    for (int i = 0; i < kWords; ++i) {
      const int id = static_cast<int>(threadIdx.x) + i * kThreads;
      const std::int64_t row = n0 + id / 16;
      if (row < w.rows) {
        const std::uint8_t* block = w.data + (row * blocks_per_row + kt) * kQ4BlockBytes;
        dm[i] = __ldg(reinterpret_cast<const std::uint32_t*>(block));
        nibbles[i] = __ldg(reinterpret_cast<const std::uint32_t*>(block + 4 + 4 * (id % 16)));
      } else {
        dm[i] = 0;  // d = m = 0: a zero row
        nibbles[i] = 0;
      }
    }
  }
  __device__ void store(__half* tile) const {
#pragma unroll
    for (int i = 0; i < kWords; ++i) {
      const int id = static_cast<int>(threadIdx.x) + i * kThreads;
      const int word = id % 16;
      const __half2 dm2 = *reinterpret_cast<const __half2*>(&dm[i]);
      const float d = __low2float(dm2);
      const float m = __high2float(dm2);
      // Byte j of run r holds values 32r + j (low nibble) and 32r + j + 16 (high).
      const int first = 32 * (word / 4) + 4 * (word % 4);
      __half low[4];
      __half high[4];
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        low[b] = __float2half_rn(q4_value((nibbles[i] >> (8 * b)) & 0xF, d, m));
        high[b] = __float2half_rn(q4_value((nibbles[i] >> (8 * b + 4)) & 0xF, d, m));
      }
      __half* row = tile + (id / 16) * kRowStride;
      *reinterpret_cast<uint2*>(row + first) = *reinterpret_cast<const uint2*>(low);
      *reinterpret_cast<uint2*>(row + first + 16) = *reinterpret_cast<const uint2*>(high);
    }
  }
};

// One block: kTileM rows of x by kTileN rows of W over the k tiles [tile_begin,
// tile_end) of its split (blockIdx.z). Four warps in a kWarpsM x kWarpsN grid.
template <int kTileM, QuantLayout kLayout>
__global__ void __launch_bounds__(kThreads)
    quant_gemm_kernel(const __half* __restrict__ x, std::int64_t m, QuantMatrix w,
                      float* __restrict__ y, float* __restrict__ partials, bool accumulate,
                      int tiles_per_split, int splits) {
  constexpr int kWarpsM = kTileM >= 64 ? 2 : 1;
  constexpr int kWarpsN = 4 / kWarpsM;
  constexpr int kWarpM = kTileM / kWarpsM;
  constexpr int kWarpN = kTileN / kWarpsN;
  constexpr int kFragsM = kWarpM / 16;
  constexpr int kFragsN = kWarpN / 8;
  __shared__ __align__(16) __half x_tile[kTileM * kRowStride];
  __shared__ __align__(16) __half w_tile[kTileN * kRowStride];

  const std::int64_t row0 = static_cast<std::int64_t>(blockIdx.x) * kTileM;
  const std::int64_t n0 = static_cast<std::int64_t>(blockIdx.y) * kTileN;
  const int split = static_cast<int>(blockIdx.z);
  const int total_tiles = static_cast<int>((w.cols + kTileK - 1) / kTileK);
  const int tile_begin = split * tiles_per_split;
  const int tile_end = min(total_tiles, tile_begin + tiles_per_split);
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int warp_m = warp / kWarpsN;
  const int warp_n = warp % kWarpsN;
  const int g = lane / 4;  // the fragment's row (A, C) or column (B)
  const int t = lane % 4;  // its column pair

  float acc[kFragsM][kFragsN][4] = {};
  XTile<kTileM> xs;
  WTile<kLayout> ws;
  if (tile_begin < tile_end) {
    xs.load(x, m, w.cols, row0, static_cast<std::int64_t>(tile_begin) * kTileK);
    ws.load(w, n0, tile_begin);
  }
  for (int kt = tile_begin; kt < tile_end; ++kt) {
    xs.store(x_tile);
    ws.store(w_tile);
    __syncthreads();
    // The next tile's loads are in flight while this one is multiplied.
    if (kt + 1 < tile_end) {
      xs.load(x, m, w.cols, row0, static_cast<std::int64_t>(kt + 1) * kTileK);
      ws.load(w, n0, kt + 1);
    }
#pragma unroll
    for (int kk = 0; kk < kTileK; kk += 16) {
      std::uint32_t a[kFragsM][4];
#pragma unroll
      for (int fm = 0; fm < kFragsM; ++fm) {
        const __half* p = x_tile + (warp_m * kWarpM + fm * 16 + g) * kRowStride + kk + 2 * t;
        a[fm][0] = shared_pair(p);
        a[fm][1] = shared_pair(p + 8 * kRowStride);
        a[fm][2] = shared_pair(p + 8);
        a[fm][3] = shared_pair(p + 8 * kRowStride + 8);
      }
#pragma unroll
      for (int fn = 0; fn < kFragsN; ++fn) {
        const __half* p = w_tile + (warp_n * kWarpN + fn * 8 + g) * kRowStride + kk + 2 * t;
        const std::uint32_t b0 = shared_pair(p);
        const std::uint32_t b1 = shared_pair(p + 8);
#pragma unroll
        for (int fm = 0; fm < kFragsM; ++fm)
          mma_16816(acc[fm][fn], a[fm], b0, b1);
      }
    }
    __syncthreads();
  }

  const std::int64_t n = w.rows;
#pragma unroll
  for (int fm = 0; fm < kFragsM; ++fm) {
#pragma unroll
    for (int fn = 0; fn < kFragsN; ++fn) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const std::int64_t row = row0 + warp_m * kWarpM + fm * 16 + g + (e >= 2 ? 8 : 0);
        const std::int64_t col = n0 + warp_n * kWarpN + fn * 8 + 2 * t + (e & 1);
        if (row >= m || col >= n) continue;
        float v = acc[fm][fn][e];
        if constexpr (kLayout == QuantLayout::kQ8Rows) v *= __half2float(w.row_scales[col]);
        if (splits == 1) {
          float* out = y + row * n + col;
          *out = accumulate ? *out + v : v;
        } else {
          partials[(static_cast<std::int64_t>(split) * m + row) * n + col] = v;
        }
      }
    }
  }
}

// y = (accumulate ? y : 0) + the splits' partial sums, added in split order.
__global__ void add_partials(const float* __restrict__ partials, int splits, std::int64_t count,
                             float* __restrict__ y, bool accumulate) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    float sum = 0.0f;
    for (int s = 0; s < splits; ++s)
      sum += partials[s * count + i];
    y[i] = accumulate ? y[i] + sum : sum;
  }
}

int tile_rows_for(std::int64_t m) {
  return m <= 16 ? 16 : m <= 32 ? 32 : 64;
}

struct SplitPlan {
  int splits = 1;
  int tiles_per_split = 1;
};

// Enough blocks for about four per multiprocessor, each split at least two k tiles.
SplitPlan plan_splits(std::int64_t m, const QuantMatrix& w, int multiprocessors) {
  const std::int64_t tile_m = tile_rows_for(m);
  const std::int64_t blocks = ((m + tile_m - 1) / tile_m) * ((w.rows + kTileN - 1) / kTileN);
  const int k_tiles = static_cast<int>((w.cols + kTileK - 1) / kTileK);
  const std::int64_t wanted = 4 * static_cast<std::int64_t>(std::max(1, multiprocessors));
  std::int64_t splits = 1;
  if (blocks < wanted) splits = (wanted + blocks - 1) / blocks;
  const std::int64_t most =
      std::max<std::int64_t>(1, std::min<std::int64_t>(kMaxSplits, k_tiles / 2));
  splits = std::clamp<std::int64_t>(splits, 1, most);
  SplitPlan plan;
  plan.tiles_per_split = static_cast<int>((k_tiles + splits - 1) / splits);
  plan.splits = (k_tiles + plan.tiles_per_split - 1) / plan.tiles_per_split;
  return plan;
}

template <int kTileM>
void launch(const __half* x, std::int64_t m, const QuantMatrix& w, float* y, float* partials,
            bool accumulate, const SplitPlan& plan, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((m + kTileM - 1) / kTileM),
                  static_cast<unsigned>((w.rows + kTileN - 1) / kTileN),
                  static_cast<unsigned>(plan.splits));
  if (w.layout == QuantLayout::kQ8Rows) {
    quant_gemm_kernel<kTileM, QuantLayout::kQ8Rows><<<grid, kThreads, 0, stream>>>(
        x, m, w, y, partials, accumulate, plan.tiles_per_split, plan.splits);
  } else {
    quant_gemm_kernel<kTileM, QuantLayout::kQ4Groups><<<grid, kThreads, 0, stream>>>(
        x, m, w, y, partials, accumulate, plan.tiles_per_split, plan.splits);
  }
}

unsigned grid_for(std::int64_t count, int threads) {
  return static_cast<unsigned>(std::clamp<std::int64_t>((count + threads - 1) / threads, 1, 65535));
}

// Eight consecutive values of a row (c a multiple of 8) dequantised as f32.
__device__ __forceinline__ void dequantize8(const QuantMatrix& w, std::int64_t row, std::int64_t c,
                                            float (&out)[8]) {
  if (w.layout == QuantLayout::kQ8Rows) {
    const float d = __half2float(w.row_scales[row]);
    const auto* q = reinterpret_cast<const std::int8_t*>(w.data + row * w.cols + c);
#pragma unroll
    for (int j = 0; j < 8; ++j)
      out[j] = __fmul_rn(static_cast<float>(q[j]), d);
    return;
  }
  const std::uint8_t* block = w.data + (row * (w.cols / kTileK) + c / kTileK) * kQ4BlockBytes;
  const __half2 dm = *reinterpret_cast<const __half2*>(block);
  const float d = __low2float(dm);
  const float m = __high2float(dm);
  const int within = static_cast<int>(c % kTileK);
  const int j = within % 32;  // 0, 8, 16 or 24: low nibbles below 16, high from 16
  const std::uint8_t* bytes = block + 4 + 16 * (within / 32) + (j % 16);
  const int shift = j >= 16 ? 4 : 0;
#pragma unroll
  for (int b = 0; b < 8; ++b)
    out[b] = q4_value((bytes[b] >> shift) & 0xF, d, m);
}

__global__ void dequantize_rows_kernel(QuantMatrix w, std::int64_t first, std::int64_t count,
                                       __half* __restrict__ out) {
  const std::int64_t groups = count * (w.cols / 8);
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
       i < groups; i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t r = i / (w.cols / 8);
    const std::int64_t c = (i % (w.cols / 8)) * 8;
    float v[8];
    dequantize8(w, first + r, c, v);
    __half h[8];
#pragma unroll
    for (int j = 0; j < 8; ++j)
      h[j] = __float2half_rn(v[j]);
    *reinterpret_cast<uint4*>(out + r * w.cols + c) = *reinterpret_cast<const uint4*>(h);
  }
}

__global__ void embed_quant_kernel(QuantMatrix table, const std::int32_t* __restrict__ tokens,
                                   float* __restrict__ out) {
  const std::int64_t t = blockIdx.x;
  const std::int64_t row = tokens[t];
  for (std::int64_t c = static_cast<std::int64_t>(threadIdx.x) * 8; c < table.cols;
       c += static_cast<std::int64_t>(blockDim.x) * 8) {
    float v[8];
    dequantize8(table, row, c, v);
#pragma unroll
    for (int j = 0; j < 8; ++j)
      out[t * table.cols + c + j] = v[j];
  }
}

__global__ void embed_fp8_kernel(const std::uint8_t* __restrict__ codes,
                                 const float* __restrict__ scales, std::int64_t cols,
                                 const std::int32_t* __restrict__ tokens, float* __restrict__ out) {
  const std::int64_t t = blockIdx.x;
  const std::int64_t row = tokens[t];
  const float s = scales[row];
  for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const __half_raw h = __nv_cvt_fp8_to_halfraw(codes[row * cols + c], __NV_E4M3);
    out[t * cols + c] = __fmul_rn(__half2float(__half(h)), s);
  }
}

}  // namespace

bool quant_gemm_supports(QuantLayout layout, std::int64_t cols) {
  return cols > 0 && cols % (layout == QuantLayout::kQ8Rows ? 16 : kTileK) == 0;
}

std::size_t quant_gemm_scratch_bytes(std::int64_t m, const QuantMatrix& w, int multiprocessors) {
  const SplitPlan plan = plan_splits(m, w, multiprocessors);
  return plan.splits > 1 ? static_cast<std::size_t>(plan.splits * m * w.rows) * sizeof(float) : 0;
}

void quant_gemm(const __half* x, std::int64_t m, const QuantMatrix& w, float* y, bool accumulate,
                void* scratch, int multiprocessors, cudaStream_t stream) {
  if (m == 0 || w.rows == 0) return;
  const SplitPlan plan = plan_splits(m, w, multiprocessors);
  auto* partials = static_cast<float*>(scratch);
  switch (tile_rows_for(m)) {
    case 16:
      launch<16>(x, m, w, y, partials, accumulate, plan, stream);
      break;
    case 32:
      launch<32>(x, m, w, y, partials, accumulate, plan, stream);
      break;
    default:
      launch<64>(x, m, w, y, partials, accumulate, plan, stream);
      break;
  }
  CONVEYOR_CUDA(cudaGetLastError());
  if (plan.splits > 1) {
    const std::int64_t count = m * w.rows;
    add_partials<<<grid_for(count, 256), 256, 0, stream>>>(partials, plan.splits, count, y,
                                                           accumulate);
    CONVEYOR_CUDA(cudaGetLastError());
  }
}

void dequantize_rows_f16(const QuantMatrix& w, std::int64_t first, std::int64_t count, __half* out,
                         cudaStream_t stream) {
  if (count == 0) return;
  dequantize_rows_kernel<<<grid_for(count * (w.cols / 8), 256), 256, 0, stream>>>(w, first, count,
                                                                                  out);
  CONVEYOR_CUDA(cudaGetLastError());
}

void embed_quant(const QuantMatrix& table, const std::int32_t* tokens, std::int64_t num_tokens,
                 float* out, cudaStream_t stream) {
  if (num_tokens == 0) return;
  embed_quant_kernel<<<static_cast<unsigned>(num_tokens), 128, 0, stream>>>(table, tokens, out);
  CONVEYOR_CUDA(cudaGetLastError());
}

void embed_fp8_rows(const std::uint8_t* codes, const float* row_scales, std::int64_t cols,
                    const std::int32_t* tokens, std::int64_t num_tokens, float* out,
                    cudaStream_t stream) {
  if (num_tokens == 0) return;
  embed_fp8_kernel<<<static_cast<unsigned>(num_tokens), 256, 0, stream>>>(codes, row_scales, cols,
                                                                          tokens, out);
  CONVEYOR_CUDA(cudaGetLastError());
}

}  // namespace conveyor::cuda
