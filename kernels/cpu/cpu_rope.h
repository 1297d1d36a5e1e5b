// Rotary position embedding on the CPU, both pairings of ModelSpec::rope_pairing.
#pragma once

#include <cstdint>
#include <span>

#include "kernels/backend.h"
#include "kernels/cpu/thread_pool.h"

namespace conveyor::cpu {

// Rotates every head of q (f32 [tokens, num_heads * head_dim]) and k
// (f32 [tokens, num_kv_heads * head_dim]) of token t by angle positions[t] * inv_freq[i]
// for pair i. Either pointer may be null.
void rope_f32(ThreadPool& pool, float* q, float* k, std::span<const std::int32_t> positions,
              const RopeConfig& config);

}  // namespace conveyor::cpu
