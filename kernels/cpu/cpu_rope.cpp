#include "kernels/cpu/cpu_rope.h"

#include <cmath>
#include <vector>

namespace conveyor::cpu {
namespace {

// Rotates one head; cos/sin are per pair [head_dim / 2].
void rotate_head(float* x, const float* cos, const float* sin, std::int64_t half,
                 RopePairing pairing) {
  if (pairing == RopePairing::kHalfSplit) {
    // Hugging Face: x * cos + rotate_half(x) * sin, pairs (i, i + d/2).
    for (std::int64_t i = 0; i < half; ++i) {
      const float a = x[i];
      const float b = x[i + half];
      x[i] = a * cos[i] - b * sin[i];
      x[i + half] = b * cos[i] + a * sin[i];
    }
  } else {
    // GGUF llama: pairs (2i, 2i + 1).
    for (std::int64_t i = 0; i < half; ++i) {
      const float a = x[2 * i];
      const float b = x[2 * i + 1];
      x[2 * i] = a * cos[i] - b * sin[i];
      x[2 * i + 1] = b * cos[i] + a * sin[i];
    }
  }
}

}  // namespace

void rope_f32(ThreadPool& pool, float* q, float* k, std::span<const std::int32_t> positions,
              const RopeConfig& config) {
  const std::int64_t head_dim = config.head_dim;
  const std::int64_t half = head_dim / 2;
  const std::int64_t q_width = config.num_heads * head_dim;
  const std::int64_t k_width = config.num_kv_heads * head_dim;
  const float* inv_freq = config.inv_freq.data();
  auto run_tokens = [&](std::int64_t begin, std::int64_t end, int) {
    std::vector<float> cos(static_cast<std::size_t>(half));
    std::vector<float> sin(static_cast<std::size_t>(half));
    for (std::int64_t t = begin; t < end; ++t) {
      const float position = static_cast<float>(positions[static_cast<std::size_t>(t)]);
      for (std::int64_t i = 0; i < half; ++i) {
        // The angle is rounded to f32 as the reference does; cos/sin of it are then
        // evaluated in double and rounded once.
        const double angle = static_cast<double>(position * inv_freq[i]);
        cos[static_cast<std::size_t>(i)] = static_cast<float>(std::cos(angle));
        sin[static_cast<std::size_t>(i)] = static_cast<float>(std::sin(angle));
      }
      if (q != nullptr) {
        for (std::int64_t h = 0; h < config.num_heads; ++h) {
          rotate_head(q + t * q_width + h * head_dim, cos.data(), sin.data(), half, config.pairing);
        }
      }
      if (k != nullptr) {
        for (std::int64_t h = 0; h < config.num_kv_heads; ++h) {
          rotate_head(k + t * k_width + h * head_dim, cos.data(), sin.data(), half, config.pairing);
        }
      }
    }
  };
  const auto tokens = static_cast<std::int64_t>(positions.size());
  if (tokens * (q_width + k_width) < (1 << 15)) {
    run_tokens(0, tokens, 0);
  } else {
    pool.parallel_ranges(tokens, 1, run_tokens);
  }
}

}  // namespace conveyor::cpu
