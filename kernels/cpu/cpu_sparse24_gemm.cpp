#include "kernels/cpu/cpu_sparse24_gemm.h"

#include <algorithm>

#include "kernels/cpu/cpu_gemm_tile.h"
#include "kernels/cpu/cpu_sparse24_pack.h"
#include "kernels/cpu/cpu_vector.h"

namespace conveyor::cpu {
namespace {

// L lanes of u32: a chunk's packed indices (cpu_sparse24_pack.h).
template <int L>
using IndexVec = WordVec<std::uint32_t, L>;

// The indices of lanes [v * L, v * L + L) of a chunk. (Vectors go through references,
// never by value: see cpu_vector.h.)
template <int L>
[[gnu::always_inline]] inline void load_index(const std::uint8_t* chunk, int v, IndexVec<L>& out) {
  out = *words_at<std::uint32_t, L>(chunk + 4 * L * v);
}

// out[i] = x[index[i] mod L]: one vpermps with AVX2 or AVX-512 (which read the index
// modulo L themselves). __builtin_shuffle is GCC's; other compilers pick lane by lane.
template <int L>
[[gnu::always_inline]] inline void permute(const Vec<L>& x, const IndexVec<L>& index, Vec<L>& out) {
#if defined(__GNUC__) && !defined(__clang__)
  out = __builtin_shuffle(x, index);
#else
  for (int i = 0; i < L; ++i)
    out[i] = x[index[i] & (L - 1)];
#endif
}

// R rows of x against C consecutive panels, only the kept products. Per lane, group g
// adds its first kept product and then its second (positions ascending): gemm_f32's
// order over k with the zero products left out. A lane's x value is picked by a
// variable permute from the L x values around its group (within the chunk's 16, so the
// load never leaves x), the packed index shifted into place being the permute's index.
template <int L, int R, int C>
[[gnu::always_inline]] inline void fused_tile(const Sparse24GemmProblem& p, std::int64_t row,
                                              std::int64_t panel) {
  constexpr int V = static_cast<int>(kPanelWidth) / L;
  const std::int64_t k = p.k;
  const std::int64_t panel_bytes = s24_panel_bytes(k);
  const float* x = p.x + row * k;
  const std::uint8_t* w = p.packed + panel * panel_bytes;
  Vec<L> acc[R][C * V] = {};
  for (std::int64_t c0 = 0; c0 < k / kS24ChunkValues; ++c0) {
    IndexVec<L> index[C * V];
    const float* kept[C];
    for (int c = 0; c < C; ++c) {
      const std::uint8_t* chunk = w + c * panel_bytes + c0 * kS24ChunkBytes;
      kept[c] = reinterpret_cast<const float*>(chunk + kS24ChunkKeptOffset);
      for (int v = 0; v < V; ++v)
        load_index<L>(chunk, v, index[c * V + v]);
    }
    const float* xc = x + c0 * kS24ChunkValues;
#pragma GCC unroll 4
    for (int g = 0; g < 4; ++g) {
      const int first = 4 * g / L * L;  // the x values loaded: [first, first + L)
      Vec<L> xs[R];
      for (int r = 0; r < R; ++r)
        xs[r] = *vec_at<L>(xc + r * k + first);
      for (int s = 0; s < 2; ++s) {
        for (int c = 0; c < C; ++c) {
          for (int v = 0; v < V; ++v) {
            const int i = c * V + v;
            const IndexVec<L> lane = index[i] >> (8 * g + 4 * s);
            const Vec<L> wv = *vec_at<L>(kept[c] + (2 * g + s) * kPanelWidth + v * L);
            for (int r = 0; r < R; ++r) {
              Vec<L> xl;
              permute<L>(xs[r], lane, xl);
              acc[r][i] += xl * wv;
            }
          }
        }
      }
    }
  }
  store_tile<L, R, C>(p, row, panel, acc);
}

template <int L, int R, int C>
[[gnu::always_inline]] inline void fused_panels(const Sparse24GemmProblem& p, std::int64_t begin,
                                                std::int64_t end) {
  for_each_tile<R, C>(
      p.m, begin, end,
      [&]<int TR, int TC>(std::int64_t row, std::int64_t panel)
          __attribute__((always_inline)) { fused_tile<L, TR, TC>(p, row, panel); });
}

// One instruction set's kernels: tiles shaped so that accumulators, indices and the x
// values fit its register file (32 vectors with AVX-512, 16 otherwise).
template <int L, int FewRows, int FewPanels, int MoreRows, int MorePanels>
struct Kernels {
  [[gnu::always_inline]] static void fused(const Sparse24GemmProblem& p, std::int64_t b,
                                           std::int64_t e) {
    if (p.m <= FewRows) {
      fused_panels<L, FewRows, FewPanels>(p, b, e);
    } else {
      fused_panels<L, MoreRows, MorePanels>(p, b, e);
    }
  }
};

void fused_generic(const Sparse24GemmProblem& p, std::int64_t b, std::int64_t e) {
  Kernels<4, 1, 2, 2, 1>::fused(p, b, e);
}

#if defined(__x86_64__) || defined(__i386__)
#define CONVEYOR_AVX2_TARGET __attribute__((target("avx2,fma")))
#define CONVEYOR_AVX512_TARGET \
  __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))
CONVEYOR_AVX2_TARGET void fused_avx2(const Sparse24GemmProblem& p, std::int64_t b, std::int64_t e) {
  Kernels<8, 1, 2, 4, 1>::fused(p, b, e);
}
CONVEYOR_AVX512_TARGET void fused_avx512(const Sparse24GemmProblem& p, std::int64_t b,
                                         std::int64_t e) {
  Kernels<16, 2, 4, 8, 2>::fused(p, b, e);
}
#undef CONVEYOR_AVX2_TARGET
#undef CONVEYOR_AVX512_TARGET
#endif

using FusedFn = void (*)(const Sparse24GemmProblem&, std::int64_t, std::int64_t);
FusedFn select_fused(CpuIsa isa) {
#if defined(__x86_64__) || defined(__i386__)
  if (isa == CpuIsa::kAvx512) return fused_avx512;
  if (isa == CpuIsa::kAvx2) return fused_avx2;
#endif
  (void)isa;
  return fused_generic;
}

}  // namespace

void gemm_s24(ThreadPool& pool, CpuIsa isa, const Sparse24GemmProblem& problem) {
  if (problem.m <= 0 || problem.n <= 0) return;
  const FusedFn fn = select_fused(isa);
  for_panel_ranges(pool, problem.m, problem.n, problem.k,
                   [&](std::int64_t begin, std::int64_t end, int) { fn(problem, begin, end); });
}

}  // namespace conveyor::cpu
