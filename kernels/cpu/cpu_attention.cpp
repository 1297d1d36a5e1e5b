#include "kernels/cpu/cpu_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "common/status.h"
#include "kernels/cpu/cpu_vector.h"

namespace conveyor::cpu {
namespace {

// Queries per work item in prefill: enough work per item to amortise scheduling, small
// enough that a long prompt splits over every thread.
constexpr std::int64_t kQueriesPerItem = 16;

// One work item: a run of queries of one sequence, for every query head that shares
// one KV head (a GQA group), so that each K and V row is read from memory once per
// group rather than once per query head.
struct WorkItem {
  std::int64_t sequence;
  std::int64_t kv_head;
  std::int64_t first_query;  // index among the sequence's new tokens
  std::int64_t num_queries;
};

struct AttentionJob {
  const float* q;
  const KvLayerView* layer;
  const AttentionSequence* sequences;
  const AttentionConfig* config;
  float* out;
};

// Calls fn(key, row) for keys [first, last] of a sequence, where row points at the
// key's K (or V) row in `base`: one block-table lookup per block, not per key.
template <typename Fn>
[[gnu::always_inline]] inline void for_each_key(const AttentionSequence& seq,
                                                const KvLayerView& layer, const float* base,
                                                std::int64_t first, std::int64_t last, Fn&& fn) {
  for (std::int64_t j = first; j <= last;) {
    const std::int64_t offset = j % layer.block_size;
    const std::int64_t run = std::min(layer.block_size - offset, last + 1 - j);
    const std::int64_t block = seq.block_table[static_cast<std::size_t>(j / layer.block_size)];
    const float* row = base + (block * layer.block_size + offset) * layer.kv_dim;
    for (std::int64_t r = 0; r < run; ++r)
      fn(j + r, row + r * layer.kv_dim);
    j += run;
  }
}

// Softmax(q K^T * scale) V for the query heads of one KV head, over a run of queries
// of one sequence. `scratch` holds group * keys scores, then group maxima and sums.
// Each head's arithmetic is the same, in the same order, as if it ran alone.
template <int L>
[[gnu::always_inline]] inline void attend(const AttentionJob& job, const WorkItem& item,
                                          float* scratch) {
  const AttentionConfig& cfg = *job.config;
  const KvLayerView& layer = *job.layer;
  const AttentionSequence& seq = job.sequences[item.sequence];
  const std::int64_t head_dim = cfg.head_dim;
  const std::int64_t q_width = cfg.num_heads * head_dim;
  const std::int64_t group = cfg.num_heads / cfg.num_kv_heads;
  const std::int64_t first_head = item.kv_head * group;
  const float* keys = static_cast<const float*>(layer.k) + item.kv_head * head_dim;
  const float* values = static_cast<const float*>(layer.v) + item.kv_head * head_dim;

  for (std::int64_t i = item.first_query; i < item.first_query + item.num_queries; ++i) {
    const std::int64_t row = seq.first_row + i;
    const std::int64_t position = seq.start_position + i;
    const std::int64_t first_key =
        cfg.sliding_window > 0 ? std::max<std::int64_t>(0, position - cfg.sliding_window + 1) : 0;
    const std::int64_t n_keys = position - first_key + 1;
    const float* queries = job.q + row * q_width + first_head * head_dim;
    float* maxima = scratch + group * n_keys;
    float* sums = maxima + group;
    // score(g, j): head g's slot for key j; indexing from first_key keeps every pointer
    // inside the scratch buffer.
    const auto score = [scratch, first_key, n_keys](std::int64_t g, std::int64_t j) -> float& {
      return scratch[g * n_keys + (j - first_key)];
    };

    for (std::int64_t g = 0; g < group; ++g)
      maxima[g] = -std::numeric_limits<float>::infinity();
    for_each_key(seq, layer, keys, first_key, position, [&](std::int64_t j, const float* k) {
      for (std::int64_t g = 0; g < group; ++g) {
        score(g, j) = dot<L>(queries + g * head_dim, k, head_dim) * cfg.scale;
        maxima[g] = std::max(maxima[g], score(g, j));
      }
    });
    for (std::int64_t g = 0; g < group; ++g) {
      float sum = 0;
      for (std::int64_t j = first_key; j <= position; ++j) {
        score(g, j) = std::exp(score(g, j) - maxima[g]);
        sum += score(g, j);
      }
      sums[g] = sum;
    }
    float* out = job.out + row * q_width + first_head * head_dim;
    std::memset(out, 0, static_cast<std::size_t>(group * head_dim) * sizeof(float));
    for_each_key(seq, layer, values, first_key, position, [&](std::int64_t j, const float* v) {
      for (std::int64_t g = 0; g < group; ++g)
        axpy<L>(score(g, j) / sums[g], v, out + g * head_dim, head_dim);
    });
  }
}

void attend_generic(const AttentionJob& job, const WorkItem& item, float* scores) {
  attend<8>(job, item, scores);
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,fma"))) void attend_avx2(const AttentionJob& job, const WorkItem& item,
                                                     float* scores) {
  attend<8>(job, item, scores);
}

__attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma"))) void attend_avx512(
    const AttentionJob& job, const WorkItem& item, float* scores) {
  attend<16>(job, item, scores);
}
#endif

using AttendFn = void (*)(const AttentionJob&, const WorkItem&, float*);

AttendFn select(CpuIsa isa) {
#if defined(__x86_64__) || defined(__i386__)
  if (isa == CpuIsa::kAvx512) return attend_avx512;
  if (isa == CpuIsa::kAvx2) return attend_avx2;
#endif
  (void)isa;
  return attend_generic;
}

void invalid(const std::string& message) {
  fail(ErrorCode::kInvalidArgument, message);
}

}  // namespace

void check_attention_inputs(const KvLayerView& layer, std::span<const AttentionSequence> sequences,
                            const AttentionConfig& config) {
  if (config.num_kv_heads <= 0 || config.num_heads % config.num_kv_heads != 0 ||
      config.num_kv_heads * config.head_dim != layer.kv_dim) {
    invalid("attention: head counts do not match the KV layer");
  }
  for (const AttentionSequence& seq : sequences) {
    const std::int64_t end = seq.start_position + seq.num_new;
    if (seq.start_position < 0 || seq.num_new < 0 || seq.first_row < 0) {
      invalid("attention: negative position or row");
    }
    const auto blocks_needed = (end + layer.block_size - 1) / layer.block_size;
    if (static_cast<std::int64_t>(seq.block_table.size()) < blocks_needed) {
      invalid("attention: block table of " + std::to_string(seq.block_table.size()) +
              " blocks cannot hold " + std::to_string(end) + " positions");
    }
    for (std::int64_t b = 0; b < blocks_needed; ++b) {
      const std::int32_t block = seq.block_table[static_cast<std::size_t>(b)];
      if (block < 0 || block >= layer.num_blocks) {
        invalid("attention: block " + std::to_string(block) + " outside the cache");
      }
    }
  }
}

void store_kv_f32(const float* k, const float* v, std::span<const std::int64_t> slots,
                  const KvLayerView& layer) {
  const std::int64_t capacity = layer.num_blocks * layer.block_size;
  const auto row_bytes = static_cast<std::size_t>(layer.kv_dim) * sizeof(float);
  for (std::size_t i = 0; i < slots.size(); ++i) {
    const std::int64_t slot = slots[i];
    if (slot == kNoSlot) continue;
    if (slot < 0 || slot >= capacity) {
      invalid("store_kv: slot " + std::to_string(slot) + " outside the cache");
    }
    const auto row = static_cast<std::int64_t>(i);
    std::memcpy(static_cast<float*>(layer.k) + slot * layer.kv_dim, k + row * layer.kv_dim,
                row_bytes);
    std::memcpy(static_cast<float*>(layer.v) + slot * layer.kv_dim, v + row * layer.kv_dim,
                row_bytes);
  }
}

void attention_f32(ThreadPool& pool, CpuIsa isa, const float* q, const KvLayerView& layer,
                   std::span<const AttentionSequence> sequences, const AttentionConfig& config,
                   float* out, std::vector<std::vector<float>>& scratch) {
  check_attention_inputs(layer, sequences, config);
  std::vector<WorkItem> items;
  std::int64_t max_keys = 0;
  for (std::size_t s = 0; s < sequences.size(); ++s) {
    const AttentionSequence& seq = sequences[s];
    max_keys = std::max(max_keys, seq.start_position + seq.num_new);
    for (std::int64_t first = 0; first < seq.num_new; first += kQueriesPerItem) {
      const std::int64_t count = std::min(kQueriesPerItem, seq.num_new - first);
      for (std::int64_t h = 0; h < config.num_kv_heads; ++h) {
        items.push_back({static_cast<std::int64_t>(s), h, first, count});
      }
    }
  }
  // Per thread: a group's scores for the longest sequence, then its maxima and sums.
  const std::int64_t group = config.num_heads / config.num_kv_heads;
  const std::int64_t scratch_floats = group * (max_keys + 2);
  scratch.resize(static_cast<std::size_t>(pool.size()));
  for (auto& buffer : scratch) {
    if (static_cast<std::int64_t>(buffer.size()) < scratch_floats) {
      buffer.resize(static_cast<std::size_t>(scratch_floats));
    }
  }
  const AttentionJob job{q, &layer, sequences.data(), &config, out};
  const AttendFn fn = select(isa);
  pool.run(static_cast<std::int64_t>(items.size()), [&](std::int64_t i, int thread) {
    fn(job, items[static_cast<std::size_t>(i)], scratch[static_cast<std::size_t>(thread)].data());
  });
}

}  // namespace conveyor::cpu
