// The scheduler's decisions as small policy values called as pure functions over
// plain state: which waiting sequences join, how the token budget of a step is
// spent, and which running sequences give up their KV blocks under pressure. The
// Scheduler applies them to its queues and block ledger; tests call them with
// tables of states, without a model.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "worker/kv_store/kv_tier_id.h"

namespace conveyor {

// The scheduler's view of one sequence: lengths, not tokens.
struct SequenceState {
  std::int64_t id = 0;
  std::int64_t context = 0;  // tokens known: the prompt plus every token generated
  std::int64_t cached = 0;   // positions of `context` whose K/V are computed
  std::int64_t blocks = 0;   // KV blocks held
  bool in_flight = false;    // part of a step that has not come back yet
  bool started = false;      // has had a chunk since it last joined the running set
  // Preempted by swap: its `cached` positions' K/V wait in this many blocks of a tier.
  std::int64_t swapped_blocks = 0;
  KvTierId swapped_tier = KvTierId::kHost;

  std::int64_t pending() const { return context - cached; }
};

// Blocks needed for `tokens` positions at `block_size` tokens per block.
constexpr std::int64_t blocks_for(std::int64_t tokens, std::int64_t block_size) {
  return (tokens + block_size - 1) / block_size;
}

// How many waiting sequences join the running set now, taken from the front of the
// queue (preempted sequences are put back at the front, so they resume first).
struct AdmissionPolicy {
  std::int64_t max_sequences = 64;  // running at once
  std::int64_t block_size = 16;
  // Static batching: a new batch is formed only when the previous one has finished,
  // and a sequence joins only if its whole prompt fits the free blocks.
  bool static_batching = false;
  // Blocks a newcomer must leave free for the running sequences to grow into (vLLM's
  // watermark): admitting into the last free blocks only to preempt on the next
  // decode step wastes the prefill. Not applied while nothing else runs.
  std::int64_t watermark_blocks = 0;

  // Continuous: each joins while the running count, the step's remaining token budget
  // and the free blocks (for its first chunk) allow; the queue order is kept, so one
  // that does not fit stops the admission.
  std::int64_t admit(std::span<const SequenceState> waiting, std::int64_t running,
                     std::int64_t free_blocks, std::int64_t token_budget) const;
};

// One sequence's share of a step: `tokens` new positions of running[index].
struct StepChunk {
  std::size_t index = 0;
  std::int64_t tokens = 0;
  bool operator==(const StepChunk&) const = default;
};

// How one step spends its token budget over the running sequences.
struct StepPolicy {
  std::int64_t max_step_tokens = 512;
  std::int64_t max_batch_sequences = 0;  // 0: no limit (a micro-batch's share otherwise)

  // Decodes first (sequences with one pending token), in admission order, so that a
  // long prefill never stalls the tokens already streaming; then prefill chunks in
  // admission order, each as much of its pending tokens as the budget still allows
  // (chunked prefill). Sequences in flight are skipped.
  std::vector<StepChunk> plan(std::span<const SequenceState> running) const;
};

struct Preemption {
  std::vector<std::size_t> victims;  // indices into running, newest first
  std::int64_t freed_blocks = 0;
};

// Which running sequences give their blocks back when `shortage` more are needed.
struct PreemptionPolicy {
  // The newest first (they have the least work to lose), skipping those in flight
  // (which includes those already placed in the step being formed) and those holding
  // no blocks; stops as soon as enough blocks are freed. freed_blocks < shortage when
  // even all of them do not do.
  Preemption choose(std::span<const SequenceState> running, std::int64_t shortage) const;
};

// How a preempted sequence comes back: its K/V recomputed (dropped now, prefilled
// again from its tokens), or swapped down to a tier of the workers' K/V stores and
// copied back before it runs again.
enum class PreemptionMode {
  kAuto,       // swap when moving the blocks out and back costs less than recomputing
  kSwap,       // swap whenever a tier has room
  kRecompute,  // never swap
};

// What a swap and a recompute cost, for kAuto.
struct SwapCosts {
  std::uint64_t block_bytes = 0;  // one block of K and V, every layer of the replica
  // Copy rates of the tiers, both ways (worker/kv_store's measured rates, rounded down).
  double host_bytes_per_second = 4e9;
  double disk_bytes_per_second = 1.2e9;
  // How fast the replica computes positions; 0 until measured (a swap is then taken
  // to be cheaper).
  double recompute_tokens_per_second = 0;
};

struct SwapPolicy {
  PreemptionMode mode = PreemptionMode::kRecompute;
  SwapCosts costs;

  // The tier a victim holding `blocks` blocks over `cached` computed positions swaps
  // to, host before disk, among those with that many free slots; nullopt: recompute.
  std::optional<KvTierId> choose(std::int64_t blocks, std::int64_t cached, std::int64_t host_free,
                                 std::int64_t disk_free) const;
  // Seconds to move `blocks` out to `tier` and back in.
  double swap_seconds(std::int64_t blocks, KvTierId tier) const;
};

}  // namespace conveyor
