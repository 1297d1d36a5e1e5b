// Timing of the attention kernels on the shapes that dominate a llama-8b batch job
// (512 decoding sequences of 256-511 positions; 32 prompts of 256 tokens in one
// prefill step), for each kernel (tensor cores, with its default stages and with two;
// CUDA cores) and K/V type (bf16, FP8). A measurement, not a check: it runs only with
// CONVEYOR_GPU_BENCH set (scripts/gpu-check.sh sets it) and reports achieved bandwidth.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <numeric>

#include "tests/gpu/cuda_twin.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

bool timing_off() {
  return no_gpu() || std::getenv("CONVEYOR_GPU_BENCH") == nullptr;
}

struct Variant {
  const char* name;
  const char* variable;  // the environment setting that picks it, if any
  const char* value;
};

struct TimedShape {
  const char* name;
  int sequences;
  int context_min;  // positions before the step's tokens, drawn from [min, max)
  int context_max;
  int new_tokens;
};

}  // namespace

TEST_CASE("attention kernel timing (CONVEYOR_GPU_BENCH)" * doctest::skip(timing_off())) {
  constexpr std::int64_t kHeads = 32;
  constexpr std::int64_t kKvHeads = 8;
  constexpr std::int64_t kHeadDim = 128;
  constexpr std::int64_t kKvDim = kKvHeads * kHeadDim;
  constexpr std::int64_t kBlock = 16;
  for (const Variant variant :
       {Variant{"tensor cores", nullptr, nullptr},
        Variant{"tensor cores, 2 stages", "CONVEYOR_CUDA_ATTENTION_STAGES", "2"},
        Variant{"CUDA cores", "CONVEYOR_CUDA_ATTENTION", "simt"}}) {
    auto gpu = variant.variable != nullptr ? gpu_backend_with(variant.variable, variant.value, 0.3)
                                           : gpu_backend(0.3);
    for (const TimedShape shape : {TimedShape{"decode 512 x 256-511", 512, 256, 512, 1},
                                   TimedShape{"prefill 32 x 256", 32, 0, 1, 256}}) {
      StepLayout layout;
      std::vector<std::vector<std::int32_t>> tables(static_cast<std::size_t>(shape.sequences));
      std::int64_t next_block = 0;
      double key_reads = 0;  // K/V rows read: one per (query row, key)
      for (int s = 0; s < shape.sequences; ++s) {
        const std::int64_t start =
            shape.context_min +
            static_cast<std::int64_t>(rng()() %
                                      static_cast<unsigned>(shape.context_max - shape.context_min));
        const std::int64_t end = start + shape.new_tokens;
        auto& table = tables[static_cast<std::size_t>(s)];
        for (std::int64_t b = 0; b < (end + kBlock - 1) / kBlock; ++b)
          table.push_back(static_cast<std::int32_t>(next_block++));
        const std::int64_t first_row = layout.num_tokens();
        for (std::int64_t p = start; p < end; ++p) {
          layout.tokens.push_back(0);
          layout.positions.push_back(static_cast<std::int32_t>(p));
          layout.slots.push_back(table[static_cast<std::size_t>(p / kBlock)] * kBlock + p % kBlock);
          key_reads += static_cast<double>(p + 1);
        }
        layout.sequences.push_back({first_row, shape.new_tokens, start, {}});
      }
      // Shuffle the blocks' places so that reads are paged, as in a long job.
      std::vector<std::int32_t> place(static_cast<std::size_t>(next_block));
      std::iota(place.begin(), place.end(), 0);
      std::shuffle(place.begin(), place.end(), rng());
      for (auto& table : tables) {
        for (auto& b : table)
          b = place[static_cast<std::size_t>(b)];
      }
      for (std::size_t t = 0; t < layout.slots.size(); ++t) {
        const std::int64_t slot = layout.slots[t];
        layout.slots[t] = place[static_cast<std::size_t>(slot / kBlock)] * kBlock + slot % kBlock;
      }
      for (std::size_t s = 0; s < tables.size(); ++s)
        layout.sequences[s].block_table = tables[s];
      const std::int64_t tokens = layout.num_tokens();
      for (const DType kv_type : {DType::kBF16, DType::kF8_R}) {
        const bool fp8 = kv_type == DType::kF8_R;
        const std::size_t element_bytes = fp8 ? 1 : 2;
        const auto slots = static_cast<std::size_t>(next_block * kBlock);
        auto k_cache = gpu->allocate(slots * kKvDim * element_bytes);
        auto v_cache = gpu->allocate(slots * kKvDim * element_bytes);
        auto k_scales = gpu->allocate(slots * kKvHeads * 4);
        auto v_scales = gpu->allocate(slots * kKvHeads * 4);
        auto q = upload(*gpu, random_floats(static_cast<std::size_t>(tokens * kHeads * kHeadDim)));
        auto out = gpu->allocate(static_cast<std::size_t>(tokens * kHeads * kHeadDim) * 4);
        KvLayerView layer{k_cache->data(), v_cache->data(), next_block, kBlock, kKvDim, kv_type};
        if (fp8) {
          layer.k_scales = k_scales->data();
          layer.v_scales = v_scales->data();
          layer.num_kv_heads = kKvHeads;
        }
        AttentionConfig config{kHeads, kKvHeads, kHeadDim, 0.088f, 0};
        auto step = gpu->prepare_step(layout);
        gpu->attention(q->floats(), layer, *step, config, out->floats());  // warm-up
        gpu->synchronize();
        constexpr int kRepeats = 20;
        const auto start = std::chrono::steady_clock::now();
        for (int r = 0; r < kRepeats; ++r)
          gpu->attention(q->floats(), layer, *step, config, out->floats());
        gpu->synchronize();
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() /
            kRepeats;
        // Bytes a kernel that reads each sequence's K/V once would move (codes and, for
        // FP8, scales), and the rows read as this kernel reads them (once per query row).
        const double row_bytes =
            2.0 * (static_cast<double>(kKvDim * element_bytes) + (fp8 ? kKvHeads * 4.0 : 0.0));
        double unique_bytes = 0;
        for (const auto& seq : layout.sequences)
          unique_bytes += static_cast<double>(seq.start_position + seq.num_new) * row_bytes;
        MESSAGE("attention " << std::string(shape.name) << ", " << std::string(variant.name) << ", "
                             << std::string(fp8 ? "FP8" : "bf16") << " K/V: " << seconds * 1e6
                             << " us; K/V once " << unique_bytes / seconds / 1e9
                             << " GB/s; as read " << key_reads * row_bytes / seconds / 1e9
                             << " GB/s");
      }
    }
  }
}
