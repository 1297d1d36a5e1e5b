#include "coordinator/scheduler/policies.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace conveyor {

std::int64_t AdmissionPolicy::admit(std::span<const SequenceState> waiting, std::int64_t running,
                                    std::int64_t free_blocks, std::int64_t token_budget) const {
  if (static_batching && running > 0) return 0;
  std::int64_t admitted = 0;
  for (const SequenceState& s : waiting) {
    if (running + admitted >= max_sequences) break;
    std::int64_t need = 0;
    if (static_batching) {
      need = blocks_for(s.context, block_size);
    } else {
      if (token_budget <= 0) break;
      const std::int64_t chunk = std::min(s.pending(), token_budget);
      need = blocks_for(s.cached + chunk, block_size) - s.blocks;
      token_budget -= chunk;
    }
    // The watermark protects running sequences; with none, a sequence may take every
    // block (it is accepted only if it fits the whole cache).
    const std::int64_t keep = running + admitted > 0 ? watermark_blocks : 0;
    if (need + keep > free_blocks) break;
    free_blocks -= need;
    ++admitted;
  }
  return admitted;
}

std::vector<StepChunk> StepPolicy::plan(std::span<const SequenceState> running) const {
  std::vector<StepChunk> chunks;
  std::int64_t budget = max_step_tokens;
  const auto full = [&] {
    return budget <= 0 || (max_batch_sequences > 0 &&
                           static_cast<std::int64_t>(chunks.size()) >= max_batch_sequences);
  };
  for (std::size_t i = 0; i < running.size() && !full(); ++i) {
    const SequenceState& s = running[i];
    if (s.in_flight || s.pending() != 1) continue;
    chunks.push_back({i, 1});
    budget -= 1;
  }
  for (std::size_t i = 0; i < running.size() && !full(); ++i) {
    const SequenceState& s = running[i];
    if (s.in_flight || s.pending() <= 1) continue;
    const std::int64_t n = std::min(s.pending(), budget);
    chunks.push_back({i, n});
    budget -= n;
  }
  return chunks;
}

Preemption PreemptionPolicy::choose(std::span<const SequenceState> running,
                                    std::int64_t shortage) const {
  Preemption result;
  for (std::size_t i = running.size(); i-- > 0 && result.freed_blocks < shortage;) {
    if (running[i].in_flight || running[i].blocks == 0) continue;
    result.victims.push_back(i);
    result.freed_blocks += running[i].blocks;
  }
  return result;
}

double SwapPolicy::swap_seconds(std::int64_t blocks, KvTierId tier) const {
  const double rate =
      tier == KvTierId::kHost ? costs.host_bytes_per_second : costs.disk_bytes_per_second;
  const double bytes = 2.0 * static_cast<double>(blocks) * static_cast<double>(costs.block_bytes);
  return rate > 0 ? bytes / rate : 0;
}

std::optional<KvTierId> SwapPolicy::choose(std::int64_t blocks, std::int64_t cached,
                                           std::int64_t host_free, std::int64_t disk_free) const {
  if (mode == PreemptionMode::kRecompute || blocks <= 0 || cached <= 0) return std::nullopt;
  const double recompute_seconds =
      costs.recompute_tokens_per_second > 0
          ? static_cast<double>(cached) / costs.recompute_tokens_per_second
          : std::numeric_limits<double>::infinity();
  for (const auto& [tier, free] :
       {std::pair{KvTierId::kHost, host_free}, std::pair{KvTierId::kDisk, disk_free}}) {
    if (free < blocks) continue;
    if (mode == PreemptionMode::kSwap || swap_seconds(blocks, tier) < recompute_seconds)
      return tier;
  }
  return std::nullopt;
}

}  // namespace conveyor
