// Paged causal attention on the CPU: every new token of every sequence attends to its
// own sequence's keys, read from the KV cache through the sequence's block table.
#pragma once

#include <span>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/thread_pool.h"

namespace conveyor::cpu {

// Throws Error(kInvalidArgument) when a block table is too short for the positions it
// must cover or names a block outside the layer.
void check_attention_inputs(const KvLayerView& layer, std::span<const AttentionSequence> sequences,
                            const AttentionConfig& config);

// Writes row i of k and v (f32 [slots.size(), kv_dim]) to slot slots[i]. Throws
// Error(kInvalidArgument) for a slot outside the layer.
void store_kv_f32(const float* k, const float* v, std::span<const std::int64_t> slots,
                  const KvLayerView& layer);

// q, out: f32 [rows, num_heads * head_dim]. `scratch` holds one buffer per pool thread
// for attention scores; it grows as needed.
void attention_f32(ThreadPool& pool, CpuIsa isa, const float* q, const KvLayerView& layer,
                   std::span<const AttentionSequence> sequences, const AttentionConfig& config,
                   float* out, std::vector<std::vector<float>>& scratch);

}  // namespace conveyor::cpu
