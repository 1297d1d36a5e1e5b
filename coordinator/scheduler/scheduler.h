// Scheduler: continuous batching over a paged KV cache. It holds the waiting queue,
// the running set (in admission order) and the block ledger of one pipeline replica,
// and turns them into steps: which sequences run how many new positions, in which
// blocks. It knows lengths, not tokens; the engine that owns the tokens asks it for a
// step, runs it, reports it complete, and says which sequences have finished.
//
// With several pipeline stages, the engine keeps several steps (micro-batches) in
// flight; a sequence belongs to at most one of them, and only sequences not in flight
// are scheduled or preempted.
#pragma once

#include <cstdint>
#include <deque>
#include <list>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "coordinator/scheduler/block_allocator.h"
#include "coordinator/scheduler/policies.h"
#include "worker/step_plan.h"

namespace conveyor {

struct SchedulerConfig {
  std::int64_t num_blocks = 0;
  std::int64_t block_size = 16;
  std::int64_t max_sequences = 64;     // running at once
  std::int64_t max_step_tokens = 512;  // new positions in one step, all sequences together
  bool static_batching = false;
  // Blocks kept free at admission (AdmissionPolicy::watermark_blocks); < 0: 1% of
  // the cache, as vLLM does.
  std::int64_t watermark_blocks = -1;
  // Reuse cached blocks of identical prompt prefixes (BlockAllocator).
  bool prefix_caching = false;
  // Slots of the swap tiers below the device cache, in blocks; 0: no such tier. Every
  // stage's worker keeps that many, each for its own layers. Preempted sequences swap
  // there, and cached prefix blocks evicted from the device move there while slots are
  // free (a sequence's swap pushes the least recently cached ones out).
  std::int64_t host_swap_blocks = 0;
  std::int64_t disk_swap_blocks = 0;
  // How preempted sequences resume (recompute unless set).
  SwapPolicy swap = {};
};

struct ScheduledChunk {
  SequenceId id = 0;
  std::int64_t start = 0;   // positions already cached
  std::int64_t tokens = 0;  // new positions this step
  // The chunk reaches the end of the known context, so the step samples the
  // sequence's next token from the last position's logits.
  bool samples = false;
  // The sequence's first chunk since it joined (or rejoined after a preemption):
  // stages start its state over. With a cached prefix, `start` is already past it.
  bool admitted = false;
  std::vector<std::int32_t> block_table;  // covers start + tokens positions
};

struct Schedule {
  std::vector<ScheduledChunk> chunks;
  std::vector<SequenceId> preempted;  // dropped their K/V in this call (recompute)
  // K/V moves the stages make before this step's chunks, in order: those of sequences
  // preempted by swap (in this call, or in an earlier one that planned nothing), and
  // those of the swapped sequences this step brings back.
  std::vector<KvSwap> swaps;
  bool empty() const { return chunks.empty(); }
  std::int64_t tokens() const;
};

class Scheduler {
 public:
  explicit Scheduler(const SchedulerConfig& config);

  // Queues a sequence whose prompt has `prompt_tokens` positions and which may grow
  // to `max_context` (prompt plus max_tokens, within the model's context). Refused
  // (kInvalidArgument) when max_context needs more blocks than the whole cache, or
  // the id is already known or negative (negative ids name cached blocks in the tiers).
  // With prefix caching, `prompt_blocks` are the hashes of the prompt's full blocks,
  // chained (see BlockAllocator): the cached ones are not computed again.
  Status add(SequenceId id, std::int64_t prompt_tokens, std::int64_t max_context,
             std::vector<BlockHash> prompt_blocks = {});

  // Forms the next step among the sequences not in flight: running ones first
  // (StepPolicy), preempting the newest when blocks run out (PreemptionPolicy), each
  // swapped or recomputed (SwapPolicy), then newcomers while budget and blocks last
  // (AdmissionPolicy; none in a step that preempted), swapped sequences first among
  // them. The scheduled sequences are in flight until complete(). Empty when nothing
  // can run now.
  Schedule schedule(std::int64_t max_batch_sequences = 0);

  // The step came back: its positions are cached, and every sampling sequence has
  // one more token of context (the one just sampled, to be fed back next step).
  void complete(const Schedule& schedule);

  // The sequence leaves (finished or cancelled) and its blocks are freed. Unknown ids
  // are ignored. Throws Error(kInternal) for one in flight.
  void finish(SequenceId id);

  std::int64_t waiting() const { return static_cast<std::int64_t>(waiting_.size()); }
  std::int64_t running() const { return static_cast<std::int64_t>(running_.size()); }
  std::int64_t in_flight() const;
  bool is_in_flight(SequenceId id) const;
  bool idle() const { return waiting_.empty() && running_.empty(); }
  std::int64_t free_blocks() const { return blocks_.free_blocks(); }
  std::int64_t used_blocks() const { return blocks_.used_blocks(); }
  std::int64_t preemptions() const { return preemptions_; }  // both kinds
  std::int64_t swap_preemptions() const { return host_swaps_ + disk_swaps_; }
  std::int64_t swap_preemptions(KvTierId tier) const {
    return tier == KvTierId::kHost ? host_swaps_ : disk_swaps_;
  }
  // Blocks swapped out and back in since the start, together.
  std::int64_t swapped_blocks() const { return swapped_blocks_; }
  // Slots of a tier that swapped sequences hold.
  std::int64_t swap_used_blocks(KvTierId tier) const {
    return tier == KvTierId::kHost ? host_swap_used_ : disk_swap_used_;
  }
  // Slots of a tier that cached prefix blocks hold.
  std::int64_t tier_cached_blocks(KvTierId tier) const {
    return tier == KvTierId::kHost ? host_cached_ : disk_cached_;
  }
  // The ids the tiers' cached blocks go by, with those whose drop is not sent yet:
  // whoever drops the scheduler (a failed run) has the stages release them, as it does
  // the sequences.
  std::vector<SequenceId> tier_cached_ids() const;
  // The measured rate at which the replica computes positions, for SwapPolicy.
  void set_recompute_rate(double tokens_per_second) {
    config_.swap.costs.recompute_tokens_per_second = tokens_per_second;
  }
  // Prompt positions looked up in the prefix cache, and those found there, counted at
  // each sequence's first admission.
  std::int64_t prefix_queried_tokens() const { return prefix_queried_; }
  std::int64_t prefix_hit_tokens() const { return prefix_hits_; }
  std::int64_t cached_blocks() const { return blocks_.cached_blocks(); }
  const SchedulerConfig& config() const { return config_; }

  // For tests and diagnostics: the queues in order.
  const std::vector<SequenceState>& running_states() const { return running_; }
  const std::deque<SequenceState>& waiting_states() const { return waiting_; }

 private:
  // The step being formed: its sequences and their new positions, what is left of
  // the token budget, and who was preempted for it.
  struct StepDraft {
    std::vector<SequenceId> ids;
    std::vector<std::int64_t> tokens;
    std::vector<SequenceId> preempted;
    std::int64_t budget = 0;
    std::int64_t max_sequences = 0;  // 0: no limit

    void add(SequenceId id, std::int64_t n) {
      ids.push_back(id);
      tokens.push_back(n);
      budget -= n;
    }
    bool has_room() const {
      return max_sequences <= 0 || static_cast<std::int64_t>(ids.size()) < max_sequences;
    }
  };

  // The phases of schedule(): running sequences (preempting under pressure), the
  // preempted back to the queue, newcomers, and the chunks with their block tables.
  void place_running(StepDraft& draft);
  void requeue_preempted(const std::vector<SequenceId>& preempted);
  void admit_newcomers(StepDraft& draft);
  Schedule emit(StepDraft& draft);

  SequenceState* find_running(SequenceId id);
  // Takes the sequence's blocks: swapped out where SwapPolicy says so, else dropped
  // for recompute.
  void preempt(SequenceState& s);
  // The swapped sequence, just given blocks, copies its K/V back into them.
  void swap_in(SequenceState& s);
  std::int64_t& swap_used(KvTierId tier) {
    return tier == KvTierId::kHost ? host_swap_used_ : disk_swap_used_;
  }
  std::int64_t& tier_cached(KvTierId tier) {
    return tier == KvTierId::kHost ? host_cached_ : disk_cached_;
  }
  std::int64_t tier_capacity(KvTierId tier) const {
    return tier == KvTierId::kHost ? config_.host_swap_blocks : config_.disk_swap_blocks;
  }

  // Cached prefix blocks below the device. A block the device cache evicts moves to a
  // tier with a free slot (pushing the least recently stashed out when every slot is a
  // cached block); a sequence whose prompt continues past its device-cached prefix with
  // blocks found there takes them back instead of computing them.
  struct TierCached {
    KvTierId tier = KvTierId::kHost;
    SequenceId id = 0;  // the swap's name for it: negative
    std::list<BlockHash>::iterator lru;
  };
  // Reserves through the ledger, then stashes what it evicted: before any swap that
  // writes the evicted blocks.
  bool reserve(SequenceId id, std::int64_t tokens);
  void stash_evicted();
  // Drops cached blocks of `tier`, least recently stashed first, until `slots` are free
  // for a sequence's swap.
  void make_room(KvTierId tier, std::int64_t slots);
  void drop_tier_cached(BlockHash hash);
  // How many of `hashes` (following a device-cached prefix) the tiers hold, in order.
  std::int64_t tier_prefix(std::span<const BlockHash> hashes) const;
  // The prompt blocks a sequence may take from the cache: at least one position must
  // be left to compute, for the logits of its next token.
  std::span<const BlockHash> reusable_prefix(const SequenceState& s) const;
  // Registers the sequence's prompt blocks whose K/V are now all computed.
  void register_computed_blocks(const SequenceState& s);

  // Prefix-cache statistics, once per sequence: its first admission.
  void count_prefix_lookup(SequenceId id, std::int64_t queried, std::int64_t found);

  struct PromptBlocks {
    std::vector<BlockHash> hashes;
    std::size_t registered = 0;
    bool counted = false;
  };

  SchedulerConfig config_;
  AdmissionPolicy admission_;
  PreemptionPolicy preemption_;
  BlockAllocator blocks_;
  std::deque<SequenceState> waiting_;
  std::vector<SequenceState> running_;  // admission order: the newest last
  std::int64_t preemptions_ = 0;
  std::int64_t host_swaps_ = 0;  // preemptions that swapped to the host tier
  std::int64_t disk_swaps_ = 0;
  std::int64_t swapped_blocks_ = 0;
  std::int64_t host_swap_used_ = 0;
  std::int64_t disk_swap_used_ = 0;
  // Swaps not yet sent: a call that preempted by swap may plan no chunk.
  std::vector<KvSwap> pending_swaps_;
  std::unordered_map<BlockHash, TierCached> tier_cached_blocks_;
  std::list<BlockHash> tier_lru_;  // least recently stashed first
  std::int64_t host_cached_ = 0;
  std::int64_t disk_cached_ = 0;
  SequenceId next_cached_id_ = -1;
  std::unordered_map<SequenceId, PromptBlocks> prompts_;
  std::int64_t prefix_queried_ = 0;
  std::int64_t prefix_hits_ = 0;
};

}  // namespace conveyor
