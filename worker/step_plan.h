// StepPlan: what one micro-batch does in one step, built by the coordinator's
// scheduler and read by every stage of a pipeline: the sequences, their new token
// ids (stage 0 embeds them), positions, block tables, and how the last stage samples.
// StepOutput is what comes back from the last stage: token ids and log-probs only.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"
#include "worker/kv_store/kv_tier_id.h"
#include "worker/sampling/sampler.h"
#include "worker/sampling/sampling_params.h"

namespace conveyor {

// How a sequence samples: fixed for its lifetime, shared by all its steps.
struct SequenceSampling {
  SamplingParams params;
  std::uint64_t seed = 0;          // always set: the coordinator draws one when absent
  std::int64_t prompt_tokens = 0;  // the first context positions that are prompt
};

struct PlannedSequence {
  std::int64_t id = 0;
  std::vector<std::int32_t> tokens;  // context positions [start, start + size())
  std::int64_t start = 0;            // positions already cached
  std::vector<std::int32_t> block_table;
  // Sample the next token from the last position: the chunk ends the known context.
  bool samples = false;
  // Set when the sequence starts in this step past a prefix whose K/V are already in
  // the cache (prefix caching): the context positions [0, start), for the state the
  // last stage keeps (the penalties' history). Empty otherwise.
  std::vector<std::int32_t> context_before;
  std::shared_ptr<const SequenceSampling> sampling;
};

// One sequence's K/V moving between the device cache and a tier of the worker's K/V
// store, where a preempted sequence's K/V wait while it is off the device. Out: the blocks are
// copied into free slots of the tier (the sequence holds them until it swaps in or
// leaves), and the device blocks are free for others from this step on. In: the
// sequence's slots are copied into `blocks` (as many as it swapped out, in table
// order) and freed. Drop: its slots are freed, their contents no longer wanted.
//
// Besides sequences, the scheduler swaps cached prefix blocks evicted from the device,
// one block each, under negative ids of its own.
struct KvSwap {
  enum class Direction : std::uint8_t { kOut = 1, kIn = 2, kDrop = 3 };
  std::int64_t sequence = 0;
  Direction direction = Direction::kOut;
  KvTierId tier = KvTierId::kHost;
  std::vector<std::int32_t> blocks;  // device block ids, in the sequence's table order
  bool operator==(const KvSwap&) const = default;
};

struct StepPlan {
  std::uint64_t step = 0;
  // Run in order before the step's sequences: a swap-out always reads its blocks
  // before anything in this step writes them.
  std::vector<KvSwap> swaps;
  std::vector<PlannedSequence> sequences;
  // Sequences that have left since the previous plan: stages drop their state.
  std::vector<std::int64_t> released;

  std::int64_t tokens() const {
    std::int64_t n = 0;
    for (const PlannedSequence& s : sequences)
      n += static_cast<std::int64_t>(s.tokens.size());
    return n;
  }
};

struct SampledToken {
  std::int64_t id = 0;
  SampleResult sample;
  // Not OK when this sequence alone could not be sampled (its logits had no finite
  // value, say): that request fails, the others in the step go on.
  Status status;
};

struct StepOutput {
  std::uint64_t step = 0;
  Status status;  // not OK: the step failed on some stage; nothing was sampled
  std::vector<SampledToken> samples;
};

}  // namespace conveyor
