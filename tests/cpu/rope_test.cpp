#include <doctest/doctest.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/rope_config.h"
#include "tests/cpu/cpu_test_util.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

ModelSpec rope_spec(std::int64_t head_dim, double theta) {
  ModelSpec spec;
  spec.num_heads = 4;
  spec.num_kv_heads = 2;
  spec.head_dim = head_dim;
  spec.rope_theta = theta;
  return spec;
}

// Rotation of one head with explicit pairs, in double.
void reference_rotate(float* x, std::int64_t head_dim, double position,
                      const std::vector<double>& inv_freq, bool half_split) {
  const std::int64_t half = head_dim / 2;
  std::vector<float> in(x, x + head_dim);
  for (std::int64_t i = 0; i < half; ++i) {
    const std::int64_t a = half_split ? i : 2 * i;
    const std::int64_t b = half_split ? i + half : 2 * i + 1;
    const double angle = position * inv_freq[static_cast<std::size_t>(i)];
    x[a] = static_cast<float>(in[a] * std::cos(angle) - in[b] * std::sin(angle));
    x[b] = static_cast<float>(in[b] * std::cos(angle) + in[a] * std::sin(angle));
  }
}

std::vector<double> plain_inv_freq(std::int64_t head_dim, double theta) {
  std::vector<double> f;
  for (std::int64_t i = 0; i < head_dim / 2; ++i) {
    f.push_back(1.0 /
                std::pow(theta, 2.0 * static_cast<double>(i) / static_cast<double>(head_dim)));
  }
  return f;
}

void check_rope(RopePairing pairing) {
  CpuBackend backend(cpu_options(2));
  ModelSpec spec = rope_spec(16, 10000.0);
  spec.rope_pairing = pairing;
  const RopeConfig config = make_rope_config(spec);
  const std::vector<std::int32_t> positions{0, 1, 7, 63, 500, 3};
  const std::int64_t q_width = spec.num_heads * spec.head_dim;
  const std::int64_t k_width = spec.num_kv_heads * spec.head_dim;
  auto q = random_floats(positions.size() * static_cast<std::size_t>(q_width), 1);
  auto k = random_floats(positions.size() * static_cast<std::size_t>(k_width), 2);
  auto q_ref = q;
  auto k_ref = k;
  backend.rope(q.data(), k.data(), *positions_step(backend, positions), config);
  const auto inv_freq = plain_inv_freq(spec.head_dim, spec.rope_theta);
  const bool half_split = pairing == RopePairing::kHalfSplit;
  for (std::size_t t = 0; t < positions.size(); ++t) {
    for (std::int64_t h = 0; h < spec.num_heads; ++h) {
      reference_rotate(q_ref.data() + t * q_width + h * spec.head_dim, spec.head_dim, positions[t],
                       inv_freq, half_split);
    }
    for (std::int64_t h = 0; h < spec.num_kv_heads; ++h) {
      reference_rotate(k_ref.data() + t * k_width + h * spec.head_dim, spec.head_dim, positions[t],
                       inv_freq, half_split);
    }
  }
  // f32 angles at position 500 carry ~3e-5 of rounding.
  CHECK(max_abs_diff(q.data(), q_ref.data(), q.size()) < 2e-4f);
  CHECK(max_abs_diff(k.data(), k_ref.data(), k.size()) < 2e-4f);
}

}  // namespace

TEST_CASE("rope with half-split pairs (Hugging Face) matches the rotation formula") {
  check_rope(RopePairing::kHalfSplit);
}

TEST_CASE("rope with interleaved pairs (GGUF llama) matches the rotation formula") {
  check_rope(RopePairing::kInterleaved);
}

TEST_CASE("interleaved rope on permuted rows equals half-split rope on the originals") {
  // GGUF conversion permutes q/k rows so that interleaved pairs are the HF half-split
  // pairs: element i of a head moves to 2i (i < d/2) or 2(i - d/2) + 1.
  CpuBackend backend(cpu_options(1));
  ModelSpec spec = rope_spec(8, 10000.0);
  spec.num_heads = 1;
  spec.num_kv_heads = 1;
  auto half_config = make_rope_config(spec);
  spec.rope_pairing = RopePairing::kInterleaved;
  auto inter_config = make_rope_config(spec);
  const std::vector<std::int32_t> positions{5};
  auto x = random_floats(8, 3);
  std::vector<float> permuted(8);
  for (int i = 0; i < 8; ++i)
    permuted[static_cast<std::size_t>(i < 4 ? 2 * i : 2 * (i - 4) + 1)] =
        x[static_cast<std::size_t>(i)];
  const auto step = positions_step(backend, positions);
  backend.rope(x.data(), nullptr, *step, half_config);
  backend.rope(permuted.data(), nullptr, *step, inter_config);
  for (int i = 0; i < 8; ++i) {
    CHECK(permuted[static_cast<std::size_t>(i < 4 ? 2 * i : 2 * (i - 4) + 1)] ==
          doctest::Approx(x[static_cast<std::size_t>(i)]).epsilon(1e-6));
  }
}

TEST_CASE("rope frequencies: linear and llama3 scaling, per-frequency factors") {
  ModelSpec spec = rope_spec(16, 500000.0);
  const auto base = plain_inv_freq(16, 500000.0);
  const auto plain = rope_inv_freq(spec);
  for (std::size_t i = 0; i < base.size(); ++i) {
    CHECK(plain[i] == doctest::Approx(base[i]).epsilon(1e-6));
  }

  spec.rope_scaling.type = RopeScalingType::kLinear;
  spec.rope_scaling.factor = 4.0;
  const auto linear = rope_inv_freq(spec);
  for (std::size_t i = 0; i < base.size(); ++i) {
    CHECK(linear[i] == doctest::Approx(base[i] / 4).epsilon(1e-6));
  }

  // Llama 3.1 formula, written out: wavelengths above original/low are divided by the
  // factor, below original/high kept, and interpolated in between.
  spec.rope_scaling = {RopeScalingType::kLlama3, 8.0, 1.0, 4.0, 64};
  const auto llama3 = rope_inv_freq(spec);
  int low = 0, mid = 0, high = 0;
  for (std::size_t i = 0; i < base.size(); ++i) {
    const double wavelen = 2 * std::numbers::pi / base[i];
    double expected = base[i];
    if (wavelen > 64.0) {
      expected = base[i] / 8;
      ++low;
    } else if (wavelen >= 16.0) {
      const double smooth = (64.0 / wavelen - 1.0) / (4.0 - 1.0);
      expected = (1 - smooth) * base[i] / 8 + smooth * base[i];
      ++mid;
    } else {
      ++high;
    }
    CHECK(llama3[i] == doctest::Approx(expected).epsilon(1e-5));
  }
  CHECK(low > 0);  // the fixture's parameters exercise all three regions
  CHECK(mid > 0);
  CHECK(high > 0);

  // Precomputed factors stand in for llama3 scaling (as GGUF llama3 files carry it).
  std::vector<float> factors(8);
  for (std::size_t i = 0; i < factors.size(); ++i)
    factors[i] = 1.0f + static_cast<float>(i);
  spec.rope_freq_factors = factors;
  const auto with_factors = rope_inv_freq(spec);
  for (std::size_t i = 0; i < base.size(); ++i) {
    CHECK(with_factors[i] == doctest::Approx(base[i] / factors[i]).epsilon(1e-6));
  }
  spec.rope_freq_factors.assign(3, 1.0f);
  CHECK_THROWS(rope_inv_freq(spec));
}
