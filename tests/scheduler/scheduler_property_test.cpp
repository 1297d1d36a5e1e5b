// The scheduler under random workloads, with up to three steps in flight as a
// pipeline keeps them: whatever the sizes, every sequence finishes, no block is
// shared or leaked, every block table covers its chunk, and no sequence is in two
// steps at once. A simulated K/V store runs the steps' swaps and chunks in order and
// checks that every chunk finds its earlier positions' K/V where its table says,
// whether they stayed, were shared from a cached prefix, or went to a tier and back.
#include <doctest/doctest.h>

#include <algorithm>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "coordinator/scheduler/scheduler.h"

namespace conveyor {
namespace {

struct Workload {
  SchedulerConfig config;
  int depth = 1;
  std::map<SequenceId, std::int64_t> outputs;  // tokens each generates
};

Workload random_workload(std::mt19937_64& random) {
  const auto pick = [&](std::int64_t low, std::int64_t high) {
    return std::uniform_int_distribution<std::int64_t>(low, high)(random);
  };
  Workload w;
  w.config.block_size = std::int64_t{1} << pick(0, 3);
  w.config.num_blocks = pick(4, 40);
  w.config.max_sequences = pick(1, 8);
  w.config.max_step_tokens = pick(1, 64);
  w.config.static_batching = pick(0, 3) == 0;
  w.config.watermark_blocks = pick(0, 1);
  w.config.prefix_caching = pick(0, 1) == 1;
  w.config.swap.mode = static_cast<PreemptionMode>(pick(0, 2));
  w.config.host_swap_blocks = pick(0, 1) == 1 ? pick(0, 30) : 0;
  w.config.disk_swap_blocks = pick(0, 1) == 1 ? pick(0, 30) : 0;
  w.config.swap.costs.block_bytes = 1 << 20;
  w.config.swap.costs.recompute_tokens_per_second = static_cast<double>(pick(0, 100000));
  w.depth = static_cast<int>(pick(1, 3));
  return w;
}

// What each position's K/V stand for: the token's content, which a shared prefix
// block has in common with the other prompts of its family.
using Content = std::pair<std::int64_t, std::int64_t>;

// The device cache and the tiers as one stage sees them, fed the steps in order.
class SimulatedStore {
 public:
  SimulatedStore(const SchedulerConfig& config, std::map<SequenceId, std::vector<BlockHash>> hashes)
      : block_size_(config.block_size),
        device_(static_cast<std::size_t>(config.num_blocks),
                std::vector<Content>(static_cast<std::size_t>(config.block_size))),
        hashes_(std::move(hashes)),
        capacity_{{KvTierId::kHost, config.host_swap_blocks},
                  {KvTierId::kDisk, config.disk_swap_blocks}} {}

  // As a stage runs a plan: the swaps in order, then the releases, then the chunks.
  void run(const Schedule& step, const std::vector<SequenceId>& released) {
    for (const KvSwap& swap : step.swaps) {
      if (swap.direction == KvSwap::Direction::kDrop) {
        CHECK(free(swap.sequence));
        ++drops_;
      } else if (swap.direction == KvSwap::Direction::kOut) {
        REQUIRE(swapped_.count(swap.sequence) == 0);
        Kept& kept = swapped_[swap.sequence];
        kept.tier = swap.tier;
        for (std::int32_t b : swap.blocks)
          kept.blocks.push_back(device_[static_cast<std::size_t>(b)]);
        used_[swap.tier] += static_cast<std::int64_t>(swap.blocks.size());
        CHECK(used_[swap.tier] <= capacity_[swap.tier]);  // the stage's tier has the room
      } else {
        REQUIRE(swapped_.count(swap.sequence) == 1);
        if (swap.sequence < 0) ++tier_hits_;
        const Kept& kept = swapped_[swap.sequence];
        CHECK(kept.tier == swap.tier);
        REQUIRE(kept.blocks.size() == swap.blocks.size());
        for (std::size_t i = 0; i < kept.blocks.size(); ++i)
          device_[static_cast<std::size_t>(swap.blocks[i])] = kept.blocks[i];
        free(swap.sequence);
      }
    }
    for (SequenceId id : released)
      free(id);
    for (const ScheduledChunk& c : step.chunks) {
      for (std::int64_t p = 0; p < c.start + c.tokens; ++p) {
        const std::int32_t block = c.block_table[static_cast<std::size_t>(p / block_size_)];
        Content& at =
            device_[static_cast<std::size_t>(block)][static_cast<std::size_t>(p % block_size_)];
        if (p < c.start) {
          CHECK(at == content(c.id, p));
        } else {
          at = content(c.id, p);
        }
      }
    }
  }
  // Sequences out (not cached blocks, which go by negative ids).
  std::size_t swapped_sequences() const {
    return static_cast<std::size_t>(std::count_if(swapped_.begin(), swapped_.end(),
                                                  [](const auto& s) { return s.first >= 0; }));
  }
  std::size_t swapped() const { return swapped_.size(); }
  std::size_t tier_hits() const { return tier_hits_; }
  std::size_t drops() const { return drops_; }

 private:
  Content content(SequenceId id, std::int64_t p) const {
    const std::vector<BlockHash>& hashes = hashes_.at(id);
    const auto block = static_cast<std::size_t>(p / block_size_);
    if (block < hashes.size()) return {static_cast<std::int64_t>(hashes[block]), p};
    return {-1 - id, p};
  }

  std::int64_t block_size_;
  std::vector<std::vector<Content>> device_;
  std::map<SequenceId, std::vector<BlockHash>> hashes_;
  // Frees what the sequence holds in a tier; false when it holds nothing.
  bool free(SequenceId id) {
    const auto it = swapped_.find(id);
    if (it == swapped_.end()) return false;
    used_[it->second.tier] -= static_cast<std::int64_t>(it->second.blocks.size());
    swapped_.erase(it);
    return true;
  }

  struct Kept {
    KvTierId tier = KvTierId::kHost;
    std::vector<std::vector<Content>> blocks;
  };
  std::map<KvTierId, std::int64_t> capacity_;
  std::map<KvTierId, std::int64_t> used_;
  std::map<SequenceId, Kept> swapped_;
  std::size_t tier_hits_ = 0;
  std::size_t drops_ = 0;
};

TEST_CASE("random workloads: everything finishes, blocks are never shared or leaked") {
  std::mt19937_64 random(20261125);
  std::int64_t swaps = 0;
  std::int64_t recomputes = 0;
  std::int64_t tier_hits = 0;
  std::int64_t drops = 0;
  for (int trial = 0; trial < 400; ++trial) {
    CAPTURE(trial);
    Workload w = random_workload(random);
    Scheduler scheduler(w.config);
    std::map<SequenceId, std::vector<BlockHash>> prompt_hashes;
    const std::int64_t sequences = std::uniform_int_distribution<std::int64_t>(1, 12)(random);
    for (SequenceId id = 0; id < sequences; ++id) {
      // Up to the whole cache: a sequence that fits only alone must still run.
      const std::int64_t capacity = w.config.num_blocks * w.config.block_size;
      const std::int64_t prompt = std::uniform_int_distribution<std::int64_t>(
          1, std::min<std::int64_t>(capacity, 40))(random);
      const std::int64_t outputs = std::uniform_int_distribution<std::int64_t>(1, 12)(random);
      // Prompts start with one of two shared prefixes of 3 blocks, then diverge:
      // the hash of block i is (prefix, i) within them, unique after.
      const std::int64_t family = id % 2;
      std::vector<BlockHash> hashes;
      for (std::int64_t b = 0; b < prompt / w.config.block_size; ++b) {
        hashes.push_back(b < 3 ? static_cast<BlockHash>(1000 * (family + 1) + b)
                               : static_cast<BlockHash>(1000000 + 1000 * id + b));
      }
      prompt_hashes[id] = hashes;
      if (scheduler.add(id, prompt, prompt + outputs, hashes).ok()) w.outputs[id] = outputs;
    }
    SimulatedStore store(w.config, prompt_hashes);
    std::map<SequenceId, std::int64_t> generated;
    std::set<SequenceId> cancelled;
    // Steps in flight, each with the sequences that left before it was formed (the
    // stages release them after its swaps, as a plan's `released`).
    std::deque<Schedule> in_flight;
    std::deque<std::vector<SequenceId>> in_flight_released;
    std::vector<SequenceId> released;
    int steps = 0;
    while (!scheduler.idle()) {
      REQUIRE(++steps < 20000);
      // Now and then a waiting sequence is cancelled, swapped out or not.
      if (!scheduler.waiting_states().empty() && random() % 8 == 0) {
        const auto& waiting = scheduler.waiting_states();
        const SequenceId id = waiting[random() % waiting.size()].id;
        scheduler.finish(id);
        cancelled.insert(id);
        released.push_back(id);
      }
      while (static_cast<int>(in_flight.size()) < w.depth) {
        const std::int64_t batch = w.depth > 1 ? 1 + steps % 3 : 0;
        Schedule step = scheduler.schedule(batch);
        if (step.empty()) break;
        in_flight.push_back(std::move(step));
        in_flight_released.push_back(std::exchange(released, {}));
      }
      // Every chunk in flight: a distinct sequence, a table that covers it, and the
      // blocks it writes held by no other chunk in flight (shared prefix blocks are
      // only read).
      std::set<SequenceId> ids;
      std::multiset<std::int32_t> held;
      std::set<std::int32_t> written;
      for (const Schedule& s : in_flight) {
        for (const ScheduledChunk& c : s.chunks) {
          CHECK(ids.insert(c.id).second);
          CHECK(static_cast<std::int64_t>(c.block_table.size()) * w.config.block_size >=
                c.start + c.tokens);
          for (std::int32_t b : c.block_table)
            held.insert(b);
          for (std::int64_t i = c.start / w.config.block_size;
               i < (c.start + c.tokens + w.config.block_size - 1) / w.config.block_size; ++i)
            CHECK(written.insert(c.block_table[static_cast<std::size_t>(i)]).second);
        }
      }
      for (std::int32_t b : written)
        CHECK(held.count(b) == 1);
      if (in_flight.empty() && scheduler.idle()) break;  // the last one was cancelled
      REQUIRE_MESSAGE(!in_flight.empty(), "no step could be formed: the scheduler is stuck");
      const Schedule done = std::move(in_flight.front());
      in_flight.pop_front();
      store.run(done, in_flight_released.front());
      in_flight_released.pop_front();
      scheduler.complete(done);
      for (const ScheduledChunk& c : done.chunks) {
        if (c.samples && ++generated[c.id] == w.outputs[c.id]) {
          scheduler.finish(c.id);
          released.push_back(c.id);
        }
      }
    }
    CHECK(in_flight.empty());
    CHECK(scheduler.free_blocks() == w.config.num_blocks);
    store.run(Schedule{}, released);        // the last releases
    CHECK(store.swapped_sequences() == 0);  // every swap-out came back or was dropped
    CHECK(scheduler.swap_used_blocks(KvTierId::kHost) == 0);
    CHECK(scheduler.swap_used_blocks(KvTierId::kDisk) == 0);
    // What stays out is cached prefix blocks, as many as the ledger says, within budget.
    const std::int64_t cached = scheduler.tier_cached_blocks(KvTierId::kHost) +
                                scheduler.tier_cached_blocks(KvTierId::kDisk);
    CHECK(static_cast<std::int64_t>(store.swapped()) == cached);
    CHECK(scheduler.tier_cached_blocks(KvTierId::kHost) <= w.config.host_swap_blocks);
    CHECK(scheduler.tier_cached_blocks(KvTierId::kDisk) <= w.config.disk_swap_blocks);
    tier_hits += static_cast<std::int64_t>(store.tier_hits());
    drops += static_cast<std::int64_t>(store.drops());
    swaps += scheduler.swap_preemptions();
    recomputes += scheduler.preemptions() - scheduler.swap_preemptions();
    for (const auto& [id, outputs] : w.outputs)
      if (cancelled.count(id) == 0) CHECK(generated[id] == outputs);
  }
  // Both kinds of preemption happened, so both were checked.
  CHECK(swaps > 0);
  CHECK(recomputes > 0);
  CHECK(tier_hits > 0);  // cached prefix blocks came back from a tier
  CHECK(drops > 0);      // and gave way to newer ones and to swapped sequences
}

}  // namespace
}  // namespace conveyor
