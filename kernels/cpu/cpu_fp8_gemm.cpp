#include "kernels/cpu/cpu_fp8_gemm.h"

#include <algorithm>
#include <array>

#include "common/fp8.h"
#include "common/quant/fp8_rows.h"
#include "kernels/cpu/cpu_gemm_tile.h"

// Built with -ffp-contract=off (CMakeLists.txt): the final scaling and bias add must
// round twice, as the reference emulation does, not once as an FMA would.

namespace conveyor::cpu {
namespace {

const std::array<float, 256>& e4m3_values() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int c = 0; c < 256; ++c)
      t[static_cast<std::size_t>(c)] = fp8_e4m3_to_fp32(static_cast<std::uint8_t>(c));
    return t;
  }();
  return table;
}

// Panels [first, first + count) of W's codes as unscaled f32 in gemm_f32's panel
// layout, rows past n zero.
void decode_panels(const Fp8GemmProblem& p, std::int64_t first, std::int64_t count, float* out) {
  const std::array<float, 256>& values = e4m3_values();
  const std::int64_t k = p.k;
  for (std::int64_t i = 0; i < count; ++i) {
    float* panel = out + i * k * kPanelWidth;
    for (std::int64_t lane = 0; lane < kPanelWidth; ++lane) {
      const std::int64_t row = (first + i) * kPanelWidth + lane;
      if (row >= p.n) {
        for (std::int64_t kk = 0; kk < k; ++kk)
          panel[kk * kPanelWidth + lane] = 0;
        continue;
      }
      const std::uint8_t* codes = p.codes + row * k;
      for (std::int64_t kk = 0; kk < k; ++kk)
        panel[kk * kPanelWidth + lane] = values[codes[kk]];
    }
  }
}

// y's columns [col_begin, col_end) from the unscaled sums.
void scale_columns(const Fp8GemmProblem& p, const Fp8GemmScratch& s, std::int64_t col_begin,
                   std::int64_t col_end) {
  for (std::int64_t i = 0; i < p.m; ++i) {
    const float sx = s.x_scales[static_cast<std::size_t>(i)];
    const float* sums = s.sums.data() + i * p.n;
    float* y = p.y + i * p.n;
    for (std::int64_t j = col_begin; j < col_end; ++j) {
      float v = sums[j] * (sx * p.scales[j]);
      if (p.bias != nullptr) v += p.bias[j];
      y[j] = p.accumulate ? y[j] + v : v;
    }
  }
}

// Panels [begin, end) for all rows.
void run_panels(CpuIsa isa, const Fp8GemmProblem& p, Fp8GemmScratch& s, std::int64_t begin,
                std::int64_t end, std::vector<float>& tile) {
  const GemmOperands unscaled{s.x_values.data(), s.sums.data(), nullptr, p.m, p.n, p.k, false};
  gemm_decoded_panels(isa, unscaled, begin, end, tile,
                      [&](std::int64_t first, std::int64_t count, float* panels) {
                        decode_panels(p, first, count, panels);
                      });
  scale_columns(p, s, begin * kPanelWidth, std::min(p.n, end * kPanelWidth));
}

}  // namespace

void gemm_fp8(ThreadPool& pool, CpuIsa isa, const Fp8GemmProblem& problem,
              Fp8GemmScratch& scratch) {
  if (problem.m <= 0 || problem.n <= 0) return;
  const auto mk = static_cast<std::size_t>(problem.m * problem.k);
  scratch.x_codes.resize(mk);
  scratch.x_scales.resize(static_cast<std::size_t>(problem.m));
  scratch.x_values.resize(mk);
  scratch.sums.resize(static_cast<std::size_t>(problem.m * problem.n));
  scratch.tiles.resize(static_cast<std::size_t>(pool.size()));
  const std::array<float, 256>& values = e4m3_values();
  auto quantize_rows = [&](std::int64_t begin, std::int64_t end, int) {
    quant::quantize_rows_e4m3(problem.x + begin * problem.k, end - begin, problem.k,
                              scratch.x_codes.data() + begin * problem.k,
                              scratch.x_scales.data() + begin);
    for (std::int64_t i = begin * problem.k; i < end * problem.k; ++i)
      scratch.x_values[static_cast<std::size_t>(i)] =
          values[scratch.x_codes[static_cast<std::size_t>(i)]];
  };
  if (small_product(problem.m, problem.n, problem.k)) {
    quantize_rows(0, problem.m, 0);
  } else {
    pool.parallel_ranges(problem.m, 1, quantize_rows);
  }
  for_panel_ranges(pool, problem.m, problem.n, problem.k,
                   [&](std::int64_t begin, std::int64_t end, int thread) {
                     run_panels(isa, problem, scratch, begin, end,
                                scratch.tiles[static_cast<std::size_t>(thread)]);
                   });
}

void unpack_fp8_row(const std::uint8_t* codes, const float* scales, std::int64_t row,
                    std::int64_t k, float* out) {
  const std::array<float, 256>& values = e4m3_values();
  const std::uint8_t* src = codes + row * k;
  for (std::int64_t kk = 0; kk < k; ++kk)
    out[kk] = values[src[kk]] * scales[row];
}

}  // namespace conveyor::cpu
