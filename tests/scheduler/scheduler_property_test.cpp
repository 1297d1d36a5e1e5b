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
      if (scheduler.add(id, prompt, prompt + outputs).ok()) w.outputs[id] = outputs;
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
      // Every chunk in flight: a distinct sequence, a table that covers it, blocks
      // that no other sequence holds.
      std::set<SequenceId> ids;
      std::set<std::int32_t> blocks;
      for (const Schedule& s : in_flight) {
        for (const ScheduledChunk& c : s.chunks) {
          CHECK(ids.insert(c.id).second);
          CHECK(static_cast<std::int64_t>(c.block_table.size()) * w.config.block_size >=
                c.start + c.tokens);
          for (std::int32_t b : c.block_table)
            CHECK(blocks.insert(b).second);
        }
      }
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
