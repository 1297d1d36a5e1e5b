// Rotary-embedding frequencies for a ModelSpec, computed the way Hugging Face
// transformers computes inv_freq (in f32, same operation order), so that angles agree
// with the reference to the last bit wherever possible. Shared by every backend.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "common/model_spec.h"
#include "common/status.h"
#include "kernels/backend.h"

namespace conveyor {

// inv_freq[i] = 1 / theta^(2i / head_dim), then scaled:
//  linear: divided by factor;
//  llama3: low frequencies (wavelength > original_context / low_freq_factor) divided by
//          factor, high frequencies (wavelength < original_context / high_freq_factor)
//          kept, and those in between interpolated smoothly between the two;
//  spec.rope_freq_factors (GGUF llama3 files ship the llama3 scaling precomputed as
//          rope_freqs): frequency i divided by factor i, in place of llama3 scaling,
//          as llama.cpp does.
inline std::vector<float> rope_inv_freq(const ModelSpec& spec) {
  const std::int64_t half = spec.head_dim / 2;
  const std::vector<float>& freq_factors = spec.rope_freq_factors;
  if (!freq_factors.empty() && static_cast<std::int64_t>(freq_factors.size()) != half) {
    fail(ErrorCode::kMalformed, "rope frequency factors: expected " + std::to_string(half) +
                                    " values, got " + std::to_string(freq_factors.size()));
  }
  const float theta = static_cast<float>(spec.rope_theta);
  const float dim = static_cast<float>(spec.head_dim);
  std::vector<float> inv_freq(static_cast<std::size_t>(half));
  for (std::int64_t i = 0; i < half; ++i) {
    // transformers: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all in f32.
    const float exponent = static_cast<float>(2 * i) / dim;
    const float power =
        static_cast<float>(std::pow(static_cast<double>(theta), static_cast<double>(exponent)));
    inv_freq[static_cast<std::size_t>(i)] = 1.0f / power;
  }

  const RopeScaling& scaling = spec.rope_scaling;
  const float factor = static_cast<float>(scaling.factor);
  if (scaling.type == RopeScalingType::kLinear) {
    for (float& f : inv_freq)
      f /= factor;
  } else if (scaling.type == RopeScalingType::kLlama3 && freq_factors.empty()) {
    const float low = static_cast<float>(scaling.low_freq_factor);
    const float high = static_cast<float>(scaling.high_freq_factor);
    const float old_context = static_cast<float>(scaling.original_max_positions);
    const float low_freq_wavelen = old_context / low;
    const float high_freq_wavelen = old_context / high;
    const float two_pi = static_cast<float>(2.0 * 3.14159265358979323846);
    for (float& f : inv_freq) {
      const float wavelen = two_pi / f;
      if (wavelen > low_freq_wavelen) {
        f = f / factor;
      } else if (!(wavelen < high_freq_wavelen)) {
        const float smooth = (old_context / wavelen - low) / (high - low);
        f = (1.0f - smooth) * f / factor + smooth * f;
      }
    }
  }
  for (std::size_t i = 0; i < freq_factors.size(); ++i)
    inv_freq[i] /= freq_factors[i];
  return inv_freq;
}

inline RopeConfig make_rope_config(const ModelSpec& spec) {
  RopeConfig config;
  config.num_heads = spec.num_heads;
  config.num_kv_heads = spec.num_kv_heads;
  config.head_dim = spec.head_dim;
  config.pairing = spec.rope_pairing;
  config.inv_freq = rope_inv_freq(spec);
  return config;
}

}  // namespace conveyor
