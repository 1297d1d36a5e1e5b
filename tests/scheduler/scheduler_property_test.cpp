// The scheduler under random workloads, with up to three steps in flight as a
// pipeline keeps them: whatever the sizes, every sequence finishes, no block is
// shared or leaked, every block table covers its chunk, and no sequence is in two
// steps at once.
#include <doctest/doctest.h>

#include <deque>
#include <map>
#include <random>
#include <set>

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
  w.depth = static_cast<int>(pick(1, 3));
  return w;
}

TEST_CASE("random workloads: everything finishes, blocks are never shared or leaked") {
  std::mt19937_64 random(20261125);
  for (int trial = 0; trial < 400; ++trial) {
    CAPTURE(trial);
    Workload w = random_workload(random);
    Scheduler scheduler(w.config);
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
      if (scheduler.add(id, prompt, prompt + outputs, hashes).ok()) w.outputs[id] = outputs;
    }
    std::map<SequenceId, std::int64_t> generated;
    std::deque<Schedule> in_flight;
    int steps = 0;
    while (!scheduler.idle()) {
      REQUIRE(++steps < 20000);
      while (static_cast<int>(in_flight.size()) < w.depth) {
        const std::int64_t batch = w.depth > 1 ? 1 + steps % 3 : 0;
        Schedule step = scheduler.schedule(batch);
        if (step.empty()) break;
        in_flight.push_back(std::move(step));
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
      REQUIRE_MESSAGE(!in_flight.empty(), "no step could be formed: the scheduler is stuck");
      const Schedule done = std::move(in_flight.front());
      in_flight.pop_front();
      scheduler.complete(done);
      for (const ScheduledChunk& c : done.chunks) {
        if (c.samples && ++generated[c.id] == w.outputs[c.id]) scheduler.finish(c.id);
      }
    }
    CHECK(in_flight.empty());
    CHECK(scheduler.free_blocks() == w.config.num_blocks);
    for (const auto& [id, outputs] : w.outputs)
      CHECK(generated[id] == outputs);
  }
}

}  // namespace
}  // namespace conveyor
