#include "coordinator/scheduler/scheduler.h"

#include <algorithm>
#include <optional>
#include <string>

namespace conveyor {

std::int64_t Schedule::tokens() const {
  std::int64_t n = 0;
  for (const ScheduledChunk& c : chunks)
    n += c.tokens;
  return n;
}

Scheduler::Scheduler(const SchedulerConfig& config)
    : config_(config), blocks_(config.num_blocks, config.block_size) {
  if (config.max_sequences < 1 || config.max_step_tokens < 1) {
    fail(ErrorCode::kInvalidArgument, "scheduler: max_sequences and max_step_tokens must be >= 1");
  }
  admission_.max_sequences = config.max_sequences;
  admission_.block_size = config.block_size;
  admission_.static_batching = config.static_batching;
  admission_.watermark_blocks =
      config.watermark_blocks >= 0 ? config.watermark_blocks : config.num_blocks / 100;
}

Status Scheduler::add(SequenceId id, std::int64_t prompt_tokens, std::int64_t max_context,
                      std::vector<BlockHash> prompt_blocks) {
  if (prompt_tokens < 1 || max_context < prompt_tokens) {
    return Status(ErrorCode::kInvalidArgument, "scheduler: a sequence needs a prompt");
  }
  if (id < 0) {
    return Status(ErrorCode::kInvalidArgument, "scheduler: sequence ids are not negative");
  }
  if (blocks_.blocks_for(max_context) > config_.num_blocks) {
    return Status(ErrorCode::kInvalidArgument,
                  "a sequence of " + std::to_string(max_context) +
                      " tokens does not fit the KV cache (" +
                      std::to_string(config_.num_blocks * config_.block_size) + " tokens)");
  }
  const auto same = [id](const SequenceState& s) { return s.id == id; };
  if (std::any_of(waiting_.begin(), waiting_.end(), same) ||
      std::any_of(running_.begin(), running_.end(), same)) {
    return Status(ErrorCode::kInvalidArgument,
                  "scheduler: sequence " + std::to_string(id) + " is already queued");
  }
  SequenceState s;
  s.id = id;
  s.context = prompt_tokens;
  waiting_.push_back(s);
  if (config_.prefix_caching && !prompt_blocks.empty()) {
    prompts_[id].hashes = std::move(prompt_blocks);
  }
  return {};
}

std::int64_t Scheduler::in_flight() const {
  return std::count_if(running_.begin(), running_.end(),
                       [](const SequenceState& s) { return s.in_flight; });
}

bool Scheduler::is_in_flight(SequenceId id) const {
  return std::any_of(running_.begin(), running_.end(),
                     [id](const SequenceState& s) { return s.id == id && s.in_flight; });
}

SequenceState* Scheduler::find_running(SequenceId id) {
  for (SequenceState& s : running_)
    if (s.id == id) return &s;
  return nullptr;
}

void Scheduler::preempt(SequenceState& s) {
  // Only the blocks of computed positions hold anything worth keeping.
  const std::int64_t computed = std::min(blocks_.blocks_for(s.cached), blocks_.blocks_held(s.id));
  // Cached prefix blocks in a tier give way to a sequence.
  const std::optional<KvTierId> tier =
      config_.swap.choose(computed, s.cached, config_.host_swap_blocks - host_swap_used_,
                          config_.disk_swap_blocks - disk_swap_used_);
  if (tier) {
    make_room(*tier, computed);
    // Swap: the stages copy the blocks into their tier before the next step that
    // runs; the sequence keeps its computed positions and resumes where it was.
    const auto table = blocks_.block_table(s.id).first(static_cast<std::size_t>(computed));
    pending_swaps_.push_back({s.id, KvSwap::Direction::kOut, *tier,
                              std::vector<std::int32_t>(table.begin(), table.end())});
    swap_used(*tier) += computed;
    swapped_blocks_ += computed;
    s.swapped_blocks = computed;
    s.swapped_tier = *tier;
    ++(*tier == KvTierId::kHost ? host_swaps_ : disk_swaps_);
  } else {
    // Recompute: the K/V go; the engine keeps every token, so the sequence is
    // prefilled again from its prompt and the tokens it had generated.
    s.cached = 0;
  }
  blocks_.release(s.id);
  s.blocks = 0;
  s.started = false;
  // Blocks registered for its prompt went with its table; the ones it gets back are
  // registered again as they are filled.
  if (auto p = prompts_.find(s.id); p != prompts_.end()) p->second.registered = 0;
  ++preemptions_;
}

void Scheduler::swap_in(SequenceState& s) {
  const auto table = blocks_.block_table(s.id);
  if (static_cast<std::int64_t>(table.size()) < s.swapped_blocks) {
    fail(ErrorCode::kInternal,
         "scheduler: sequence " + std::to_string(s.id) + " swaps in without blocks for its K/V");
  }
  const auto into = table.first(static_cast<std::size_t>(s.swapped_blocks));
  pending_swaps_.push_back({s.id, KvSwap::Direction::kIn, s.swapped_tier,
                            std::vector<std::int32_t>(into.begin(), into.end())});
  swap_used(s.swapped_tier) -= s.swapped_blocks;
  swapped_blocks_ += s.swapped_blocks;
  s.swapped_blocks = 0;
}

Schedule Scheduler::schedule(std::int64_t max_batch_sequences) {
  StepDraft draft;
  draft.max_sequences = max_batch_sequences;
  draft.budget = config_.max_step_tokens;
  place_running(draft);
  requeue_preempted(draft.preempted);
  // No newcomers in a step that had to preempt: that would only trade one sequence's
  // blocks for another's.
  if (draft.preempted.empty()) admit_newcomers(draft);
  return emit(draft);
}

void Scheduler::place_running(StepDraft& draft) {
  const StepPolicy policy{config_.max_step_tokens, draft.max_sequences};
  const std::vector<StepChunk> planned = policy.plan(running_);
  // Sequences placed in this step are marked in flight at once, which also keeps the
  // preemption policy off them.
  const bool others_in_flight = in_flight() > 0;
  for (const StepChunk& chunk : planned) {
    SequenceState& s = running_[chunk.index];
    if (std::find(draft.preempted.begin(), draft.preempted.end(), s.id) != draft.preempted.end()) {
      continue;  // a victim earlier in this loop
    }
    const std::int64_t need = blocks_.blocks_for(s.cached + chunk.tokens) - s.blocks;
    // Victims until the blocks are there. A victim may free fewer blocks than it
    // holds (prefix blocks shared with others stay), hence the loop.
    while (need > blocks_.free_blocks()) {
      s.in_flight = true;  // not its own victim
      const Preemption p = preemption_.choose(running_, need - blocks_.free_blocks());
      s.in_flight = false;
      if (p.freed_blocks < need - blocks_.free_blocks()) break;
      for (std::size_t v : p.victims) {
        preempt(running_[v]);
        draft.preempted.push_back(running_[v].id);
      }
    }
    if (need > blocks_.free_blocks() || !reserve(s.id, s.cached + chunk.tokens)) {
      // Not enough even from every other sequence. Blocks held by steps in flight
      // come back soon: wait for them. Otherwise this sequence yields its own.
      if (!others_in_flight) {
        preempt(s);
        draft.preempted.push_back(s.id);
      }
      continue;
    }
    s.blocks = blocks_.blocks_held(s.id);
    s.in_flight = true;
    draft.add(s.id, chunk.tokens);
  }
}

void Scheduler::requeue_preempted(const std::vector<SequenceId>& preempted) {
  if (preempted.empty()) return;
  const auto is_preempted = [&](const SequenceState& s) {
    return std::find(preempted.begin(), preempted.end(), s.id) != preempted.end();
  };
  // To the front of the queue, the oldest first, so that they resume before any
  // newcomer.
  for (auto it = running_.rbegin(); it != running_.rend(); ++it)
    if (is_preempted(*it)) waiting_.push_front(*it);
  std::erase_if(running_, is_preempted);
}

void Scheduler::admit_newcomers(StepDraft& draft) {
  // Admission looks at no more of the queue than could join, each as it would start:
  // past the part of its prompt the cache holds.
  const auto candidates = static_cast<std::size_t>(
      std::clamp<std::int64_t>(config_.max_sequences - running(), 0, waiting()));
  std::vector<SequenceState> queue(waiting_.begin(),
                                   waiting_.begin() + static_cast<std::ptrdiff_t>(candidates));
  for (SequenceState& s : queue) {
    // A swapped sequence needs blocks for all it had: none of them is held.
    if (s.swapped_blocks > 0) continue;
    // Cached blocks that others hold cost nothing; unheld ones leave the free count
    // when taken, so they count as blocks still to get.
    const std::span<const BlockHash> reusable = reusable_prefix(s);
    const std::int64_t cached = blocks_.cached_prefix(reusable);
    // Blocks coming back from a tier count as computed, in blocks still to get.
    const std::int64_t tiered = tier_prefix(reusable.subspan(static_cast<std::size_t>(cached)));
    s.cached = (cached + tiered) * config_.block_size;
    s.blocks = blocks_.held_in_prefix(reusable.first(static_cast<std::size_t>(cached)));
  }
  const std::int64_t admit =
      admission_.admit(queue, running(), blocks_.free_blocks(), draft.budget);
  for (std::int64_t a = 0; a < admit; ++a) {
    SequenceState s = waiting_.front();
    waiting_.pop_front();
    const std::span<const BlockHash> reusable = reusable_prefix(s);
    // The tier-cached blocks that continue the prefix, taken out of reach of eviction
    // until they are back on the device (or given back below).
    std::vector<std::pair<BlockHash, TierCached>> from_tiers;
    if (!reusable.empty()) {
      const std::int64_t taken = blocks_.take_cached_prefix(s.id, reusable);
      // Only for a sequence that runs in this step: its first chunk is what brings
      // them back (the budget is positive, and a position is always left to compute).
      if (draft.has_room() && draft.budget > 0) {
        const auto rest = reusable.subspan(static_cast<std::size_t>(taken));
        const std::int64_t tiered = tier_prefix(rest);
        for (std::int64_t i = 0; i < tiered; ++i) {
          const BlockHash hash = rest[static_cast<std::size_t>(i)];
          const auto found = tier_cached_blocks_.find(hash);
          tier_lru_.erase(found->second.lru);
          from_tiers.emplace_back(hash, found->second);
          tier_cached_blocks_.erase(found);
        }
      }
      const auto found = static_cast<std::int64_t>(from_tiers.size()) + taken;
      s.cached = found * config_.block_size;
      s.blocks = taken;
      count_prefix_lookup(s.id, static_cast<std::int64_t>(reusable.size()), found);
    }
    const std::int64_t n = std::min(s.pending(), draft.budget);
    const bool in_this_step = n > 0 && draft.has_room();
    const bool swapped = s.swapped_blocks > 0;
    if ((swapped && !in_this_step) || (in_this_step && !reserve(s.id, s.cached + n))) {
      // Fewer blocks than admission counted on, or a swapped sequence that could not
      // run now (its K/V come back with its first chunk): back to the front of the
      // queue, a prefix given back, rather than running without a step.
      blocks_.release(s.id);
      if (!swapped) s.cached = 0;
      s.blocks = 0;
      for (auto& [hash, cached] : from_tiers) {
        cached.lru = tier_lru_.insert(tier_lru_.end(), hash);
        tier_cached_blocks_.emplace(hash, cached);
      }
      waiting_.push_front(s);
      break;
    }
    if (in_this_step) {
      s.blocks = blocks_.blocks_held(s.id);
      s.in_flight = true;
      draft.add(s.id, n);
      if (swapped) swap_in(s);
      // Tier-cached prefix blocks come back into their places in the new table.
      const auto table = blocks_.block_table(s.id);
      const std::size_t first =
          static_cast<std::size_t>(s.cached / config_.block_size) - from_tiers.size();
      for (std::size_t i = 0; i < from_tiers.size(); ++i) {
        const TierCached& cached = from_tiers[i].second;
        pending_swaps_.push_back(
            {cached.id, KvSwap::Direction::kIn, cached.tier, {table[first + i]}});
        --tier_cached(cached.tier);
        ++swapped_blocks_;
      }
    }
    running_.push_back(s);
  }
}

bool Scheduler::reserve(SequenceId id, std::int64_t tokens) {
  const bool reserved = blocks_.reserve(id, tokens);
  stash_evicted();
  return reserved;
}

void Scheduler::stash_evicted() {
  for (const auto& [block, hash] : blocks_.take_evicted()) {
    if (tier_cached_blocks_.contains(hash)) continue;
    std::optional<KvTierId> to;
    for (const KvTierId tier : {KvTierId::kHost, KvTierId::kDisk}) {
      if (tier_capacity(tier) - swap_used(tier) - tier_cached(tier) > 0) {
        to = tier;
        break;
      }
    }
    if (!to && !tier_lru_.empty()) {
      // Every free slot holds a cached block: the least recently stashed gives way.
      to = tier_cached_blocks_.at(tier_lru_.front()).tier;
      drop_tier_cached(tier_lru_.front());
    }
    if (!to) continue;
    const SequenceId id = next_cached_id_--;
    pending_swaps_.push_back({id, KvSwap::Direction::kOut, *to, {block}});
    tier_lru_.push_back(hash);
    tier_cached_blocks_.emplace(hash, TierCached{*to, id, std::prev(tier_lru_.end())});
    ++tier_cached(*to);
    ++swapped_blocks_;
  }
}

void Scheduler::make_room(KvTierId tier, std::int64_t slots) {
  for (auto it = tier_lru_.begin();
       it != tier_lru_.end() &&
       tier_capacity(tier) - swap_used(tier) - tier_cached(tier) < slots;) {
    const BlockHash hash = *it++;
    if (tier_cached_blocks_.at(hash).tier == tier) drop_tier_cached(hash);
  }
}

void Scheduler::drop_tier_cached(BlockHash hash) {
  const auto found = tier_cached_blocks_.find(hash);
  const TierCached cached = found->second;
  pending_swaps_.push_back({cached.id, KvSwap::Direction::kDrop, cached.tier, {}});
  tier_lru_.erase(cached.lru);
  --tier_cached(cached.tier);
  tier_cached_blocks_.erase(found);
}

std::int64_t Scheduler::tier_prefix(std::span<const BlockHash> hashes) const {
  std::int64_t n = 0;
  while (n < static_cast<std::int64_t>(hashes.size()) &&
         tier_cached_blocks_.contains(hashes[static_cast<std::size_t>(n)]))
    ++n;
  return n;
}

std::vector<SequenceId> Scheduler::tier_cached_ids() const {
  std::vector<SequenceId> ids;
  for (const auto& [hash, cached] : tier_cached_blocks_)
    ids.push_back(cached.id);
  // Those dropped by swaps not sent yet too: the stages may still hold them.
  for (const KvSwap& swap : pending_swaps_)
    if (swap.sequence < 0) ids.push_back(swap.sequence);
  return ids;
}

Schedule Scheduler::emit(StepDraft& draft) {
  Schedule out;
  for (std::size_t i = 0; i < draft.ids.size(); ++i) {
    SequenceState& s = *find_running(draft.ids[i]);
    ScheduledChunk chunk;
    chunk.id = s.id;
    chunk.start = s.cached;
    chunk.tokens = draft.tokens[i];
    chunk.samples = s.cached + chunk.tokens == s.context;
    chunk.admitted = !s.started;
    s.started = true;
    const auto table = blocks_.block_table(s.id);
    chunk.block_table.assign(table.begin(), table.end());
    out.chunks.push_back(std::move(chunk));
  }
  // Those preempted by swap resume where they were: the stages keep their state.
  for (SequenceId id : draft.preempted) {
    const auto it = std::find_if(waiting_.begin(), waiting_.end(),
                                 [id](const SequenceState& w) { return w.id == id; });
    if (it == waiting_.end() || it->swapped_blocks == 0) out.preempted.push_back(id);
  }
  // Swaps travel with the next step that runs anything: stages act on plans only.
  if (!out.chunks.empty()) {
    out.swaps = std::move(pending_swaps_);
    pending_swaps_.clear();
  }
  return out;
}

void Scheduler::complete(const Schedule& schedule) {
  for (const ScheduledChunk& chunk : schedule.chunks) {
    SequenceState* s = find_running(chunk.id);
    if (s == nullptr || !s->in_flight) {
      fail(ErrorCode::kInternal, "scheduler: completed a step for sequence " +
                                     std::to_string(chunk.id) + " that is not in flight");
    }
    s->in_flight = false;
    s->cached += chunk.tokens;
    if (chunk.samples) s->context += 1;
    register_computed_blocks(*s);
  }
}

void Scheduler::count_prefix_lookup(SequenceId id, std::int64_t queried, std::int64_t found) {
  PromptBlocks& prompt = prompts_.at(id);
  if (prompt.counted) return;  // a readmission after preemption is not a new prompt
  prompt.counted = true;
  prefix_queried_ += queried * config_.block_size;
  prefix_hits_ += found * config_.block_size;
}

std::span<const BlockHash> Scheduler::reusable_prefix(const SequenceState& s) const {
  auto p = prompts_.find(s.id);
  if (p == prompts_.end() || s.cached != 0) return {};
  const auto limit = static_cast<std::size_t>((s.context - 1) / config_.block_size);
  return std::span(p->second.hashes).first(std::min(limit, p->second.hashes.size()));
}

void Scheduler::register_computed_blocks(const SequenceState& s) {
  auto p = prompts_.find(s.id);
  if (p == prompts_.end()) return;
  PromptBlocks& prompt = p->second;
  while (prompt.registered < prompt.hashes.size() &&
         static_cast<std::int64_t>(prompt.registered + 1) * config_.block_size <= s.cached) {
    blocks_.register_block(s.id, static_cast<std::int64_t>(prompt.registered),
                           prompt.hashes[prompt.registered]);
    ++prompt.registered;
  }
}

void Scheduler::finish(SequenceId id) {
  if (SequenceState* s = find_running(id)) {
    if (s->in_flight) {
      fail(ErrorCode::kInternal,
           "scheduler: sequence " + std::to_string(id) + " finished while in flight");
    }
    blocks_.release(id);
    prompts_.erase(id);
    std::erase_if(running_, [id](const SequenceState& r) { return r.id == id; });
    return;
  }
  prompts_.erase(id);
  // A swapped sequence's slots are free again, in the ledger now and on the stages with
  // the next swaps, before any swap that may take them (a release would come after).
  for (const SequenceState& w : waiting_) {
    if (w.id != id || w.swapped_blocks == 0) continue;
    swap_used(w.swapped_tier) -= w.swapped_blocks;
    pending_swaps_.push_back({id, KvSwap::Direction::kDrop, w.swapped_tier, {}});
  }
  std::erase_if(waiting_, [id](const SequenceState& w) { return w.id == id; });
}

}  // namespace conveyor
