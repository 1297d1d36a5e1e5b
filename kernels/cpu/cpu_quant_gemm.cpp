#include "kernels/cpu/cpu_quant_gemm.h"

#include <algorithm>

#include "kernels/cpu/cpu_gemm.h"
#include "kernels/cpu/cpu_gemm_tile.h"
#include "kernels/cpu/cpu_vector.h"

namespace conveyor::cpu {
namespace {

// Up to this many rows of x, quants are widened in registers; from here on, a tile
// dequantised once serves every row (see the header).
constexpr std::int64_t kFusedMaxRows = 8;

constexpr std::int64_t kScaleFloats = kPanelWidth;

// Signed words: a quant's sign extends as it is shifted down.
template <int L>
using QuantWords = WordVec<std::int32_t, L>;

// The f32 weights of step t of a word (one lane per row), as dequantize_row computes
// them (cpu_quant_pack.h).
template <QuantFormat F, int L>
[[gnu::always_inline]] inline void widen(const QuantWords<L>& words, int t, const Vec<L>& scale,
                                         const Vec<L>& min, Vec<L>& out) {
  if constexpr (F == QuantFormat::kNibble) {
    out = __builtin_convertvector((words >> (4 * t)) & 15, Vec<L>) * scale + min;
  } else if constexpr (F == QuantFormat::kSignedNibble) {
    (void)min;
    out = __builtin_convertvector(((words >> (4 * t)) & 15) - 8, Vec<L>) * scale;
  } else {
    (void)min;
    out = __builtin_convertvector((words << (24 - 8 * t)) >> 24, Vec<L>) * scale;
  }
}

// R rows of x against C consecutive panels, weights widened in registers.
template <QuantFormat F, int L, int R, int C>
[[gnu::always_inline]] inline void fused_tile(const QuantGemmProblem& p, std::int64_t row,
                                              std::int64_t panel) {
  constexpr int V = static_cast<int>(kPanelWidth) / L;
  constexpr QuantFormatLayout layout = quant_format_layout(F);
  const std::int64_t k = p.k;
  const std::int64_t panel_bytes = quant_panel_bytes(F, k);
  const float* x = p.x + row * k;
  const std::uint8_t* w = p.packed + panel * panel_bytes;
  constexpr int steps = quant_steps_per_word(F);
  Vec<L> acc[R][C * V] = {};
  for (std::int64_t g = 0; g < k / layout.group; ++g) {
    Vec<L> scale[C * V];
    Vec<L> min[C * V];
    const std::uint8_t* group[C];
    for (int c = 0; c < C; ++c) {
      group[c] = w + c * panel_bytes + g * layout.group_bytes;
      const auto* scales = reinterpret_cast<const float*>(group[c]);
      for (int v = 0; v < V; ++v) {
        scale[c * V + v] = *vec_at<L>(scales + v * L);
        min[c * V + v] =
            F == QuantFormat::kNibble ? *vec_at<L>(scales + kScaleFloats + v * L) : Vec<L>{};
      }
    }
    const float* xg = x + g * layout.group;
    for (int word = 0; word < layout.group / steps; ++word) {
      QuantWords<L> words[C * V];
      for (int c = 0; c < C; ++c) {
        for (int v = 0; v < V; ++v) {
          words[c * V + v] =
              *words_at<std::int32_t, L>(group[c] + layout.quants_offset +
                                         (word * kPanelWidth + v * L) * sizeof(std::int32_t));
        }
      }
#pragma GCC unroll 8
      for (int t = 0; t < steps; ++t) {
        Vec<L> wv[C * V];
        for (int i = 0; i < C * V; ++i)
          widen<F, L>(words[i], t, scale[i], min[i], wv[i]);
        for (int r = 0; r < R; ++r) {
          const float xs = xg[r * k + word * steps + t];
          for (int i = 0; i < C * V; ++i)
            acc[r][i] += xs * wv[i];
        }
      }
    }
  }
  store_tile<L, R, C>(p, row, panel, acc);
}

template <QuantFormat F, int L, int R, int C>
[[gnu::always_inline]] inline void fused_panels(const QuantGemmProblem& p, std::int64_t begin,
                                                std::int64_t end) {
  for_each_tile<R, C>(
      p.m, begin, end,
      [&]<int TR, int TC>(std::int64_t row, std::int64_t panel)
          __attribute__((always_inline)) { fused_tile<F, L, TR, TC>(p, row, panel); });
}

// Panels [begin, begin + count) as f32 in gemm_f32's layout: out[(i*k + kk)*16 + lane].
template <QuantFormat F, int L>
[[gnu::always_inline]] inline void dequantize_panels(const QuantGemmProblem& p, std::int64_t begin,
                                                     std::int64_t count, float* out) {
  constexpr int V = static_cast<int>(kPanelWidth) / L;
  constexpr QuantFormatLayout layout = quant_format_layout(F);
  constexpr int steps = quant_steps_per_word(F);
  const std::int64_t k = p.k;
  const std::int64_t panel_bytes = quant_panel_bytes(F, k);
  for (std::int64_t i = 0; i < count; ++i) {
    const std::uint8_t* w = p.packed + (begin + i) * panel_bytes;
    float* dst = out + i * k * kPanelWidth;
    for (std::int64_t g = 0; g < k / layout.group; ++g, dst += layout.group * kPanelWidth) {
      const std::uint8_t* group = w + g * layout.group_bytes;
      const auto* scales = reinterpret_cast<const float*>(group);
      Vec<L> scale[V];
      Vec<L> min[V];
      for (int v = 0; v < V; ++v) {
        scale[v] = *vec_at<L>(scales + v * L);
        min[v] = F == QuantFormat::kNibble ? *vec_at<L>(scales + kScaleFloats + v * L) : Vec<L>{};
      }
      for (int word = 0; word < layout.group / steps; ++word) {
        for (int v = 0; v < V; ++v) {
          const QuantWords<L> words = *words_at<std::int32_t, L>(
              group + layout.quants_offset + (word * kPanelWidth + v * L) * sizeof(std::int32_t));
#pragma GCC unroll 8
          for (int t = 0; t < steps; ++t) {
            Vec<L> wv;
            widen<F, L>(words, t, scale[v], min[v], wv);
            *vec_at<L>(dst + (word * steps + t) * kPanelWidth + v * L) = wv;
          }
        }
      }
    }
  }
}

// One instruction set's kernels: fused tiles shaped so that accumulators, scales and
// widened weights fit its register file (32 vectors with AVX-512, 16 otherwise).
template <int L, int FewRows, int FewPanels, int MoreRows, int MorePanels>
struct Kernels {
  template <QuantFormat F>
  [[gnu::always_inline]] static void fused(const QuantGemmProblem& p, std::int64_t b,
                                           std::int64_t e) {
    if (p.m <= FewRows) {
      fused_panels<F, L, FewRows, FewPanels>(p, b, e);
    } else {
      fused_panels<F, L, MoreRows, MorePanels>(p, b, e);
    }
  }
  [[gnu::always_inline]] static void run_fused(const QuantGemmProblem& p, std::int64_t b,
                                               std::int64_t e) {
    switch (p.format) {
      case QuantFormat::kNibble:
        return fused<QuantFormat::kNibble>(p, b, e);
      case QuantFormat::kSignedNibble:
        return fused<QuantFormat::kSignedNibble>(p, b, e);
      case QuantFormat::kInt8:
        return fused<QuantFormat::kInt8>(p, b, e);
    }
  }
  [[gnu::always_inline]] static void dequantize(const QuantGemmProblem& p, std::int64_t b,
                                                std::int64_t count, float* out) {
    switch (p.format) {
      case QuantFormat::kNibble:
        return dequantize_panels<QuantFormat::kNibble, L>(p, b, count, out);
      case QuantFormat::kSignedNibble:
        return dequantize_panels<QuantFormat::kSignedNibble, L>(p, b, count, out);
      case QuantFormat::kInt8:
        return dequantize_panels<QuantFormat::kInt8, L>(p, b, count, out);
    }
  }
};

using GenericKernels = Kernels<4, 1, 2, 2, 1>;
void fused_generic(const QuantGemmProblem& p, std::int64_t b, std::int64_t e) {
  GenericKernels::run_fused(p, b, e);
}
void dequantize_generic(const QuantGemmProblem& p, std::int64_t b, std::int64_t c, float* out) {
  GenericKernels::dequantize(p, b, c, out);
}

#if defined(__x86_64__) || defined(__i386__)
#define CONVEYOR_AVX2_TARGET __attribute__((target("avx2,fma")))
#define CONVEYOR_AVX512_TARGET \
  __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))
using Avx2Kernels = Kernels<8, 1, 2, 4, 1>;
CONVEYOR_AVX2_TARGET void fused_avx2(const QuantGemmProblem& p, std::int64_t b, std::int64_t e) {
  Avx2Kernels::run_fused(p, b, e);
}
CONVEYOR_AVX2_TARGET void dequantize_avx2(const QuantGemmProblem& p, std::int64_t b, std::int64_t c,
                                          float* out) {
  Avx2Kernels::dequantize(p, b, c, out);
}
using Avx512Kernels = Kernels<16, 2, 4, 4, 2>;
CONVEYOR_AVX512_TARGET void fused_avx512(const QuantGemmProblem& p, std::int64_t b,
                                         std::int64_t e) {
  Avx512Kernels::run_fused(p, b, e);
}
CONVEYOR_AVX512_TARGET void dequantize_avx512(const QuantGemmProblem& p, std::int64_t b,
                                              std::int64_t c, float* out) {
  Avx512Kernels::dequantize(p, b, c, out);
}
#undef CONVEYOR_AVX2_TARGET
#undef CONVEYOR_AVX512_TARGET
#endif

using FusedFn = void (*)(const QuantGemmProblem&, std::int64_t, std::int64_t);
using DequantizeFn = void (*)(const QuantGemmProblem&, std::int64_t, std::int64_t, float*);

FusedFn select_fused(CpuIsa isa) {
#if defined(__x86_64__) || defined(__i386__)
  if (isa == CpuIsa::kAvx512) return fused_avx512;
  if (isa == CpuIsa::kAvx2) return fused_avx2;
#endif
  (void)isa;
  return fused_generic;
}

DequantizeFn select_dequantize(CpuIsa isa) {
#if defined(__x86_64__) || defined(__i386__)
  if (isa == CpuIsa::kAvx512) return dequantize_avx512;
  if (isa == CpuIsa::kAvx2) return dequantize_avx2;
#endif
  (void)isa;
  return dequantize_generic;
}

// Panels [begin, end) for all rows: a tile of panels at a time dequantised into
// `tile`, then gemm_f32's kernel over it.
void tiled_panels(CpuIsa isa, const QuantGemmProblem& p, std::int64_t begin, std::int64_t end,
                  std::vector<float>& tile) {
  const DequantizeFn dequantize = select_dequantize(isa);
  gemm_decoded_panels(isa, p, begin, end, tile,
                      [&](std::int64_t first, std::int64_t count, float* panels) {
                        dequantize(p, first, count, panels);
                      });
}

}  // namespace

void gemm_quant(ThreadPool& pool, CpuIsa isa, const QuantGemmProblem& problem,
                std::vector<std::vector<float>>& scratch) {
  if (problem.m <= 0 || problem.n <= 0) return;
  scratch.resize(static_cast<std::size_t>(pool.size()));
  auto run = [&](std::int64_t begin, std::int64_t end, int thread) {
    if (problem.m <= kFusedMaxRows) {
      select_fused(isa)(problem, begin, end);
    } else {
      tiled_panels(isa, problem, begin, end, scratch[static_cast<std::size_t>(thread)]);
    }
  };
  for_panel_ranges(pool, problem.m, problem.n, problem.k, run);
}

}  // namespace conveyor::cpu
