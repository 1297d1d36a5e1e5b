// Activation-aware scaling: with a few loud input channels the search moves away from
// plain quantisation (alpha > 0) and lowers the output error.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "common/quant/awq_search.h"
#include "common/quant/channel_stats.h"
#include "common/status.h"

using namespace conveyor;
using namespace conveyor::quant;

namespace {

constexpr std::int64_t kN = 48, kK = 256, kM = 96;
const std::int64_t kLoud[] = {3, 77, 140, 201};

std::vector<float> normal_values(std::int64_t count, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(static_cast<std::size_t>(count));
  for (float& x : v)
    x = normal(rng);
  return v;
}

// Calibration activations [kM, kK] whose kLoud channels are 30x the others.
std::vector<float> activations() {
  std::vector<float> x = normal_values(kM * kK, 1);
  for (std::int64_t i = 0; i < kM; ++i) {
    for (std::int64_t j : kLoud)
      x[static_cast<std::size_t>(i * kK + j)] *= 30.0f;
  }
  return x;
}

}  // namespace

TEST_CASE("awq search: loud channels get larger scales and a smaller output error") {
  const std::vector<float> x = activations();
  const std::vector<float> w = normal_values(kN * kK, 2);
  for (DType type : {DType::kQ4_G128, DType::kQ4_1}) {
    CAPTURE(dtype_name(type));
    const AwqWeight weight{w, kN};
    AwqOptions options;
    options.type = type;
    const AwqResult r = search_awq_scales({&weight, 1}, x, kM, kK, options);
    REQUIRE(r.errors.size() == 21);
    CHECK(r.errors[0] == r.plain_error);
    CHECK(r.error == *std::min_element(r.errors.begin(), r.errors.end()));
    CHECK(r.alpha > 0);
    CHECK(r.error < 0.9 * r.plain_error);
    REQUIRE(r.scales.size() == static_cast<std::size_t>(kK));
    const float quiet = r.scales[0];
    for (std::int64_t j : kLoud)
      CHECK(r.scales[static_cast<std::size_t>(j)] > 2 * quiet);
    CHECK(r.scales == awq_scales(channel_mean_abs(x, kM, kK), r.alpha));
  }
}

TEST_CASE("awq search: weights sharing an input share the scales; mean |x| may be given") {
  const std::vector<float> x = activations();
  const std::vector<float> a = normal_values(kN * kK, 3);
  const std::vector<float> b = normal_values(16 * kK, 4);
  const AwqWeight both[] = {{a, kN}, {b, 16}};
  const AwqResult together = search_awq_scales(both, x, kM, kK);
  const std::vector<float> mean_abs = channel_mean_abs(x, kM, kK);
  AwqOptions given;
  given.mean_abs = mean_abs;
  const AwqResult with_stats = search_awq_scales(both, x, kM, kK, given);
  CHECK(with_stats.alpha == together.alpha);
  CHECK(with_stats.errors == together.errors);
  CHECK(together.alpha > 0);
  // Uniform activations: nothing to protect, alpha = 0 is as good as any.
  const std::vector<float> flat = normal_values(kM * kK, 5);
  const AwqWeight one{a, kN};
  const AwqResult plain = search_awq_scales({&one, 1}, flat, kM, kK);
  CHECK(plain.error <= plain.plain_error);
  CHECK(plain.error > 0.8 * plain.plain_error);
}

TEST_CASE("scaled weights with the scales folded into the norm compute the same layer") {
  const std::vector<float> x = activations();
  const std::vector<float> w = normal_values(kN * kK, 6);
  const std::vector<float> s = awq_scales(channel_mean_abs(x, kM, kK), 0.5f);
  std::vector<float> scaled = w;
  scale_weight_columns(scaled, kN, kK, s);
  std::vector<float> norm(static_cast<std::size_t>(kK), 1.0f);
  fold_scales_into_norm(norm, s);
  for (std::int64_t i = 0; i < 4; ++i) {
    for (std::int64_t r = 0; r < kN; ++r) {
      double plain = 0, folded = 0;
      for (std::int64_t j = 0; j < kK; ++j) {
        const auto xj = static_cast<double>(x[static_cast<std::size_t>(i * kK + j)]);
        plain += xj * w[static_cast<std::size_t>(r * kK + j)];
        folded +=
            xj * norm[static_cast<std::size_t>(j)] * scaled[static_cast<std::size_t>(r * kK + j)];
      }
      REQUIRE(folded == doctest::Approx(plain).epsilon(1e-4));
    }
  }
}

TEST_CASE("awq search refuses what it cannot do") {
  const std::vector<float> x(4 * 96, 1.0f);
  const std::vector<float> w(2 * 96, 1.0f);
  const AwqWeight weight{w, 2};
  CHECK_THROWS_AS(search_awq_scales({&weight, 1}, x, 4, 96), Error);  // 96: no Q4_G128 groups
  AwqOptions q4_1;
  q4_1.type = DType::kQ4_1;
  CHECK_NOTHROW(search_awq_scales({&weight, 1}, x, 4, 96, q4_1));
  AwqOptions no_grid;
  no_grid.type = DType::kQ4_1;
  no_grid.grid = 0;
  CHECK_THROWS_AS(search_awq_scales({&weight, 1}, x, 4, 96, no_grid), Error);
  CHECK_THROWS_AS(search_awq_scales({&weight, 1}, x, 3, 96, q4_1), Error);  // x is not [3, 96]
}
