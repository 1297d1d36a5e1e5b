#include "kernels/cuda/quant_gemm.h"

#include <cuda_fp8.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ptx.h"
#include "kernels/cuda/shared_memory_grant.h"

namespace conveyor::cuda {
namespace {

using ptx::commit_copies;
using ptx::copy_async_16;
using ptx::copy_async_4;
using ptx::shared_address;
using ptx::wait_copies;

constexpr int kThreads = 128;  // four warps
constexpr int kTileN = 64;
constexpr int kTileK = 128;  // one int4 group
// Halves of padding per row of the x tile: a row of 136 halves is 68 words, so the eight
// rows an ldmatrix phase reads fall in 32 different banks.
constexpr int kXRowStride = kTileK + 8;
constexpr int kQ4BlockBytes = 68;
// Bytes per row of a q8 tile in shared memory: 128 and 16 of padding (36 words: the
// eight rows a fragment load touches start 4 banks apart).
constexpr int kQ8RowStride = kTileK + 16;
constexpr int kMaxSplits = 16;
// Blocks per multiprocessor the register allocation must allow; 64-row tiles' stages
// leave room in shared memory for two blocks only.
__host__ __device__ constexpr int min_blocks(int tile_m) {
  return tile_m >= 64 ? 2 : 3;
}

template <QuantLayout kLayout>
__host__ __device__ constexpr int w_tile_bytes() {
  return kLayout == QuantLayout::kQ8Rows ? kTileN * kQ8RowStride : kTileN * kQ4BlockBytes;
}

// The A fragment of mma.m16n8k16 for rows [0, 16) and columns [0, 16) from `tile`: lane l
// gives the address of row l % 16, column 8 * (l / 16).
__device__ __forceinline__ void load_a_fragment(const __half* tile, int lane,
                                                std::uint32_t (&a)[4]) {
  const __half* p = tile + (lane % 16) * kXRowStride + (lane / 16) * 8;
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(a[0]), "=r"(a[1]), "=r"(a[2]), "=r"(a[3])
               : "r"(shared_address(p)));
}

__device__ __forceinline__ __half2 as_half2(std::uint32_t bits) {
  return *reinterpret_cast<const __half2*>(&bits);
}

// Two small integers placed in the mantissas of f16 1024.0 (0x6400), then the offset
// subtracted: exact, and two instructions for a pair instead of two conversions.
__device__ __forceinline__ __half2 pair_to_half2(std::uint32_t low, std::uint32_t high,
                                                 float offset) {
  return __hsub2(as_half2(0x64006400u | low | (high << 16)), __float2half2_rn(offset));
}

// q * d + m in f32, unfused as the CPU's dequantisation computes it.
__device__ __forceinline__ float q4_value(std::uint32_t q, float d, float m) {
  return __fadd_rn(__fmul_rn(static_cast<float>(q), d), m);
}

// Starts the copies of k tile `kt` (x rows [row0, row0 + kTileM), W rows [n0, n0 +
// kTileN)) into one stage of shared memory.
template <int kTileM, QuantLayout kLayout>
__device__ __forceinline__ void load_tile(const __half* x, std::int64_t m, const QuantMatrix& w,
                                          std::int64_t row0, std::int64_t n0, int kt,
                                          __half* x_tile, std::uint8_t* w_tile) {
  const std::int64_t k0 = static_cast<std::int64_t>(kt) * kTileK;
  constexpr int kXChunks = kTileM * kTileK / 8;  // 16 bytes each
#pragma unroll
  for (int i = 0; i < (kXChunks + kThreads - 1) / kThreads; ++i) {
    const int id = static_cast<int>(threadIdx.x) + i * kThreads;
    if (kXChunks % kThreads != 0 && id >= kXChunks) break;
    const int r = id / 16;
    const int c = (id % 16) * 8;
    const std::int64_t row = row0 + r;
    const bool valid = row < m && k0 + c < w.cols;
    copy_async_16(x_tile + r * kXRowStride + c, valid ? x + row * w.cols + k0 + c : x, valid);
  }
  if constexpr (kLayout == QuantLayout::kQ8Rows) {
    constexpr int kChunks = kTileN * kTileK / 16;
#pragma unroll
    for (int i = 0; i < kChunks / kThreads; ++i) {
      const int id = static_cast<int>(threadIdx.x) + i * kThreads;
      const int r = id / 8;
      const int c = (id % 8) * 16;
      const std::int64_t row = n0 + r;
      const bool valid = row < w.rows && k0 + c < w.cols;
      copy_async_16(w_tile + r * kQ8RowStride + c, valid ? w.data + row * w.cols + k0 + c : w.data,
                    valid);
    }
  } else {
    // A row's block of the tile: 17 words, 4-byte aligned only.
    constexpr int kWords = kTileN * kQ4BlockBytes / 4;
    const std::int64_t blocks_per_row = w.cols / kTileK;
#pragma unroll
    for (int i = 0; i < (kWords + kThreads - 1) / kThreads; ++i) {
      const int id = static_cast<int>(threadIdx.x) + i * kThreads;
      if (id >= kWords) break;
      const int r = id / (kQ4BlockBytes / 4);
      const int word = id % (kQ4BlockBytes / 4);
      const std::int64_t row = n0 + r;
      const bool valid = row < w.rows;
      const std::uint8_t* src =
          valid ? w.data + (row * blocks_per_row + kt) * kQ4BlockBytes + 4 * word : w.data;
      copy_async_4(w_tile + r * kQ4BlockBytes + 4 * word, src, valid);
    }
  }
}

// The B fragment of mma.m16n8k16 for W row `r` of the tile and k [kk, kk + 16): this
// lane's values k = kk + 2t, kk + 2t + 1 (b0) and kk + 2t + 8, kk + 2t + 9 (b1), as f16.
// q8: the integers (the row scale comes with the sum); q4: q * d + m in one f16 fma.
template <QuantLayout kLayout>
__device__ __forceinline__ void load_b_fragment(const std::uint8_t* w_tile, int r, int kk, int t,
                                                std::uint32_t& b0, std::uint32_t& b1) {
  if constexpr (kLayout == QuantLayout::kQ8Rows) {
    const std::uint8_t* p = w_tile + r * kQ8RowStride + kk + 2 * t;
    const std::uint32_t lo = *reinterpret_cast<const std::uint16_t*>(p) ^ 0x8080u;
    const std::uint32_t hi = *reinterpret_cast<const std::uint16_t*>(p + 8) ^ 0x8080u;
    // int8 q + 128 as an unsigned byte; 1024 + 128 subtracted.
    const __half2 v0 = pair_to_half2(lo & 0xFF, lo >> 8, 1152.0f);
    const __half2 v1 = pair_to_half2(hi & 0xFF, hi >> 8, 1152.0f);
    b0 = *reinterpret_cast<const std::uint32_t*>(&v0);
    b1 = *reinterpret_cast<const std::uint32_t*>(&v1);
  } else {
    const std::uint8_t* block = w_tile + r * kQ4BlockBytes;
    const __half2 dm = *reinterpret_cast<const __half2*>(block);
    const __half2 d = __low2half2(dm);
    const __half2 mn = __high2half2(dm);
    // Byte j of run s holds values 32s + j (low nibble) and 32s + j + 16 (high).
    const std::uint8_t* run = block + 4 + 16 * (kk / 32) + 2 * t;
    const int shift = (kk % 32) >= 16 ? 4 : 0;
    const std::uint32_t lo = *reinterpret_cast<const std::uint16_t*>(run) >> shift;
    const std::uint32_t hi = *reinterpret_cast<const std::uint16_t*>(run + 8) >> shift;
    const __half2 v0 = __hfma2(pair_to_half2(lo & 0xF, (lo >> 8) & 0xF, 1024.0f), d, mn);
    const __half2 v1 = __hfma2(pair_to_half2(hi & 0xF, (hi >> 8) & 0xF, 1024.0f), d, mn);
    b0 = *reinterpret_cast<const std::uint32_t*>(&v0);
    b1 = *reinterpret_cast<const std::uint32_t*>(&v1);
  }
}

// One block: kTileM rows of x by kTileN rows of W over the k tiles [tile_begin,
// tile_end) of its split (blockIdx.z), four warps in a kWarpsM x (4 / kWarpsM) grid
// (with kWarpsM 1 each warp widens its own columns of W once for all the block's rows;
// with 2 every W value is widened twice, for half as many A fragments). kStages stages
// of shared memory: while tile i is multiplied, the copies of the next kStages - 1
// tiles are in flight.
template <int kTileM, QuantLayout kLayout, int kWarpsM, int kStages>
__global__ void __launch_bounds__(kThreads, min_blocks(kTileM))
    quant_gemm_kernel(const __half* __restrict__ x, std::int64_t m, QuantMatrix w,
                      float* __restrict__ y, float* __restrict__ partials, bool accumulate,
                      int tiles_per_split, int splits) {
  constexpr int kWarpsN = 4 / kWarpsM;
  constexpr int kWarpM = kTileM / kWarpsM;
  constexpr int kWarpN = kTileN / kWarpsN;
  constexpr int kFragsM = kWarpM / 16;
  constexpr int kFragsN = kWarpN / 8;
  // Dynamic: the stages exceed the 48 KiB of static shared memory.
  extern __shared__ __align__(128) std::uint8_t shared[];
  constexpr int kXTileHalves = kTileM * kXRowStride;
  // Stage s: x at x_tiles + s * kXTileHalves, W at w_tiles + s * w_tile_bytes().
  __half* const x_tiles = reinterpret_cast<__half*>(shared);
  std::uint8_t* const w_tiles = shared + kStages * kXTileHalves * 2;

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
  const int g = lane / 4;  // the fragment's row (C) or column (B)
  const int t = lane % 4;  // its column pair

  auto load_stage = [&](int kt) {
    const int stage = (kt - tile_begin) % kStages;
    load_tile<kTileM, kLayout>(x, m, w, row0, n0, kt, x_tiles + stage * kXTileHalves,
                               w_tiles + stage * w_tile_bytes<kLayout>());
  };
  // One commit group per tile, empty past the end, so that "all but the newest
  // kStages - 2 groups are done" always means "tile i has landed".
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (tile_begin + s < tile_end) load_stage(tile_begin + s);
    commit_copies();
  }
  float acc[kFragsM][kFragsN][4] = {};
  for (int kt = tile_begin; kt < tile_end; ++kt) {
    wait_copies<kStages - 2>();
    // Tile kt is visible to every thread, and every warp is done with the stage that
    // tile kt - 1 used, which the copies below refill.
    __syncthreads();
    if (kt + kStages - 1 < tile_end) load_stage(kt + kStages - 1);
    commit_copies();
    const int stage = (kt - tile_begin) % kStages;
    const __half* x_tile = x_tiles + stage * kXTileHalves;
    const std::uint8_t* w_tile = w_tiles + stage * w_tile_bytes<kLayout>();
    // Unrolled by half: fully unrolled, the wide tiles' loads hoisted ahead of their use
    // need more registers than min_blocks() leaves.
#pragma unroll 4
    for (int kk = 0; kk < kTileK; kk += 16) {
      std::uint32_t a[kFragsM][4];
#pragma unroll
      for (int fm = 0; fm < kFragsM; ++fm)
        load_a_fragment(x_tile + (warp_m * kWarpM + fm * 16) * kXRowStride + kk, lane, a[fm]);
#pragma unroll
      for (int fn = 0; fn < kFragsN; ++fn) {
        std::uint32_t b0 = 0;
        std::uint32_t b1 = 0;
        load_b_fragment<kLayout>(w_tile, warp_n * kWarpN + fn * 8 + g, kk, t, b0, b1);
#pragma unroll
        for (int fm = 0; fm < kFragsM; ++fm)
          ptx::mma_f16(acc[fm][fn], a[fm], b0, b1);
      }
    }
  }
  wait_copies<0>();  // none is left pending when the block ends

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

// The kernel's shape, for measuring the variants on a GPU without rebuilding:
// CONVEYOR_CUDA_QUANT_GEMM_TUNING="WARPS_M,STAGES,BLOCKS_PER_SM" (default "1,4,4"; WARPS_M
// 1 or 2, STAGES 2 or 4, BLOCKS_PER_SM the blocks a multiprocessor is given before K is
// split), read once.
struct Tuning {
  int warps_m = 1;
  int stages = 4;
  int blocks_per_sm = 4;
};

const Tuning& tuning() {
  static const Tuning value = [] {
    Tuning t;
    if (const char* text = std::getenv("CONVEYOR_CUDA_QUANT_GEMM_TUNING")) {
      int warps_m = 0;
      int stages = 0;
      int blocks = 0;
      if (std::sscanf(text, "%d,%d,%d", &warps_m, &stages, &blocks) == 3) {
        t.warps_m = warps_m == 2 ? 2 : 1;
        t.stages = stages == 2 ? 2 : 4;
        t.blocks_per_sm = std::clamp(blocks, 1, 64);
      }
    }
    return t;
  }();
  return value;
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
  const int blocks_per_sm = tuning().blocks_per_sm;
  const std::int64_t tile_m = tile_rows_for(m);
  const std::int64_t blocks = ((m + tile_m - 1) / tile_m) * ((w.rows + kTileN - 1) / kTileN);
  const int k_tiles = static_cast<int>((w.cols + kTileK - 1) / kTileK);
  const std::int64_t wanted =
      blocks_per_sm * static_cast<std::int64_t>(std::max(1, multiprocessors));
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

template <int kTileM, QuantLayout kLayout, int kWarpsM, int kStages>
void launch_variant(const __half* x, std::int64_t m, const QuantMatrix& w, float* y,
                    float* partials, bool accumulate, const SplitPlan& plan, cudaStream_t stream) {
  constexpr int kSharedBytes = kStages * (kTileM * kXRowStride * 2 + w_tile_bytes<kLayout>());
  constexpr auto* kernel = &quant_gemm_kernel<kTileM, kLayout, kWarpsM, kStages>;
  grant_shared_memory<kernel>(kSharedBytes);
  const dim3 grid(static_cast<unsigned>((m + kTileM - 1) / kTileM),
                  static_cast<unsigned>((w.rows + kTileN - 1) / kTileN),
                  static_cast<unsigned>(plan.splits));
  kernel<<<grid, kThreads, kSharedBytes, stream>>>(x, m, w, y, partials, accumulate,
                                                   plan.tiles_per_split, plan.splits);
}

template <int kTileM, QuantLayout kLayout>
void launch_layout(const __half* x, std::int64_t m, const QuantMatrix& w, float* y, float* partials,
                   bool accumulate, const SplitPlan& plan, cudaStream_t stream) {
  const Tuning& tune = tuning();
  // 64-row tiles in a 2 x 2 warp grid; narrower ones always side by side.
  if constexpr (kTileM >= 64) {
    if (tune.warps_m == 2) {
      if (tune.stages == 2) {
        launch_variant<kTileM, kLayout, 2, 2>(x, m, w, y, partials, accumulate, plan, stream);
      } else {
        launch_variant<kTileM, kLayout, 2, 4>(x, m, w, y, partials, accumulate, plan, stream);
      }
      return;
    }
  }
  if (tune.stages == 2) {
    launch_variant<kTileM, kLayout, 1, 2>(x, m, w, y, partials, accumulate, plan, stream);
  } else {
    launch_variant<kTileM, kLayout, 1, 4>(x, m, w, y, partials, accumulate, plan, stream);
  }
}

template <int kTileM>
void launch(const __half* x, std::int64_t m, const QuantMatrix& w, float* y, float* partials,
            bool accumulate, const SplitPlan& plan, cudaStream_t stream) {
  if (w.layout == QuantLayout::kQ8Rows) {
    launch_layout<kTileM, QuantLayout::kQ8Rows>(x, m, w, y, partials, accumulate, plan, stream);
  } else {
    launch_layout<kTileM, QuantLayout::kQ4Groups>(x, m, w, y, partials, accumulate, plan, stream);
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
