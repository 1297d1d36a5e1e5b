// The Scheduler step by step, against a scripted model: each table row is the step
// the scheduler forms and the state it leaves, so a change of policy shows as a
// changed row.
#include "coordinator/scheduler/scheduler.h"

#include <doctest/doctest.h>

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace conveyor {
namespace {

struct Scripted {
  SequenceId id;
  std::int64_t prompt;
  std::int64_t outputs;  // tokens it generates before it finishes
};

// "1:4 2:1*" (id:new positions, * = samples), "-3" for a preemption by recompute,
// "3>host(2)" and "3<host(2)" for 2 blocks swapped out to and in from the host tier;
// then the running and waiting ids and the free blocks after the step has completed.
std::string describe(const Schedule& step, const Scheduler& s) {
  std::ostringstream line;
  for (const KvSwap& swap : step.swaps) {
    line << swap.sequence << (swap.direction == KvSwap::Direction::kOut ? '>' : '<')
         << tier_name(swap.tier) << '(' << swap.blocks.size() << ") ";
  }
  for (const ScheduledChunk& c : step.chunks)
    line << c.id << ':' << c.tokens << (c.samples ? "* " : " ");
  for (SequenceId id : step.preempted)
    line << '-' << id << ' ';
  line << "| run";
  for (const SequenceState& r : s.running_states())
    line << ' ' << r.id;
  line << " | wait";
  for (const SequenceState& w : s.waiting_states())
    line << ' ' << w.id;
  line << " | free " << s.free_blocks();
  return line.str();
}

// Adds the scripted sequences, then runs one step at a time (complete, then finish
// those that generated all their outputs), returning one line per step.
std::vector<std::string> simulate(const SchedulerConfig& config,
                                  const std::vector<Scripted>& script, int max_steps = 50) {
  Scheduler scheduler(config);
  std::map<SequenceId, std::int64_t> left;
  for (const Scripted& s : script) {
    REQUIRE(scheduler.add(s.id, s.prompt, s.prompt + s.outputs).ok());
    left[s.id] = s.outputs;
  }
  std::vector<std::string> lines;
  for (int step = 0; step < max_steps && !scheduler.idle(); ++step) {
    const Schedule schedule = scheduler.schedule();
    REQUIRE_FALSE(schedule.empty());
    scheduler.complete(schedule);
    for (const ScheduledChunk& c : schedule.chunks) {
      if (c.samples && --left[c.id] == 0) scheduler.finish(c.id);
    }
    lines.push_back(describe(schedule, scheduler));
  }
  CHECK(scheduler.idle());
  CHECK(scheduler.free_blocks() == config.num_blocks);
  return lines;
}

void check_table(const std::vector<std::string>& got, const std::vector<std::string>& want) {
  CHECK(got.size() == want.size());
  for (std::size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    CAPTURE(i);
    CHECK(got[i] == want[i]);
  }
}

TEST_CASE(
    "continuous batching: chunked prefill mixes with decode; finished sequences leave, "
    "new ones join") {
  // 4 tokens per block, 16 blocks, 8 tokens per step, 3 sequences at once.
  const SchedulerConfig config{16, 4, 3, 8, false};
  const std::vector<Scripted> script = {{1, 10, 2}, {2, 3, 3}, {3, 5, 1}, {4, 2, 2}};
  check_table(simulate(config, script),
              {
                  // 1 prefills 8 of 10 (2 blocks); the budget is spent, so 2 and 3 wait.
                  "1:8 | run 1 | wait 2 3 4 | free 14",
                  // 1 finishes its prompt and samples; 2 joins with its whole prompt, 3 with
                  // 3 of its 5 tokens; three are running, so 4 waits.
                  "1:2* 2:3* 3:3 | run 1 2 3 | wait 4 | free 11",
                  // Decodes first, then 3's last 2 prompt tokens; 1 (2 outputs) and 3 (1)
                  // finish and free their blocks.
                  "1:1* 2:1* 3:2* | run 2 | wait 4 | free 15",
                  // 4 joins the moment there is room, next to 2's decode; 2 finishes.
                  "2:1* 4:2* | run 4 | wait | free 15",
                  "4:1* | run | wait | free 16",
              });
}

TEST_CASE("preemption by recompute when blocks run out mid-decode; the victim resumes first") {
  // 2 tokens per block, 5 blocks (10 positions), two sequences that grow to 8 each.
  const SchedulerConfig config{5, 2, 4, 16, false};
  const std::vector<Scripted> script = {{1, 3, 5}, {2, 3, 5}};
  check_table(simulate(config, script),
              {
                  "1:3* 2:3* | run 1 2 | wait | free 1",
                  // Position 3 still fits each one's second block.
                  "1:1* 2:1* | run 1 2 | wait | free 1",
                  // Position 4 opens a third block: 1 takes the last one; for 2 there is no
                  // victim (1 is in the step), so 2 yields its own blocks.
                  "1:1* -2 | run 1 | wait 2 | free 2",
                  // 2 must recompute 5 positions (3 blocks): it waits while 1 runs.
                  "1:1* | run 1 | wait 2 | free 2",
                  "1:1* | run | wait 2 | free 5",
                  // 2 comes back: its prompt and its 2 generated tokens are prefilled again.
                  "2:5* | run 2 | wait | free 2",
                  "2:1* | run 2 | wait | free 2",
                  "2:1* | run | wait | free 5",
              });
}

TEST_CASE("preemption by swap: the victim's K/V go to the host tier and come back, no recompute") {
  // As above, with a host tier of 4 blocks: 2's 4 computed positions (2 blocks) wait
  // there, and it resumes with one new position instead of five.
  SchedulerConfig config{5, 2, 4, 16, false};
  config.host_swap_blocks = 4;
  config.swap.mode = PreemptionMode::kSwap;
  const std::vector<Scripted> script = {{1, 3, 5}, {2, 3, 5}};
  check_table(simulate(config, script),
              {
                  "1:3* 2:3* | run 1 2 | wait | free 1",
                  "1:1* 2:1* | run 1 2 | wait | free 1",
                  "2>host(2) 1:1* | run 1 | wait 2 | free 2",
                  "1:1* | run 1 | wait 2 | free 2",
                  "1:1* | run | wait 2 | free 5",
                  // Back in 2 of the free blocks, plus a third for position 4.
                  "2<host(2) 2:1* | run 2 | wait | free 2",
                  "2:1* | run 2 | wait | free 2",
                  "2:1* | run | wait | free 5",
              });
}

TEST_CASE("a swapped-out sequence that leaves frees its slots on the stages before later swaps") {
  SchedulerConfig config{5, 2, 4, 16, false};
  config.host_swap_blocks = 2;
  config.swap.mode = PreemptionMode::kSwap;
  Scheduler scheduler(config);
  REQUIRE(scheduler.add(1, 3, 8).ok());
  REQUIRE(scheduler.add(2, 3, 8).ok());
  for (int step = 0; step < 3; ++step)
    scheduler.complete(scheduler.schedule());
  // As in the table above: 2 went out to the host, filling it.
  REQUIRE(scheduler.swap_used_blocks(KvTierId::kHost) == 2);
  scheduler.finish(2);  // cancelled while out
  CHECK(scheduler.swap_used_blocks(KvTierId::kHost) == 0);
  // The stages hear of it in order with the swaps, not after them as with a release:
  // a swap-out in the same step may need those very slots.
  const Schedule next = scheduler.schedule();
  REQUIRE_FALSE(next.swaps.empty());
  CHECK(next.swaps.front() == KvSwap{2, KvSwap::Direction::kDrop, KvTierId::kHost, {}});
}

TEST_CASE("static batching: the next batch starts only when the whole batch has finished") {
  const SchedulerConfig config{32, 4, 2, 64, true};
  const std::vector<Scripted> script = {{1, 4, 1}, {2, 4, 3}, {3, 4, 1}};
  check_table(simulate(config, script),
              {
                  "1:4* 2:4* | run 2 | wait 3 | free 31",
                  // 1 left after one token, yet 3 may not join the running batch.
                  "2:1* | run 2 | wait 3 | free 30",
                  "2:1* | run | wait 3 | free 32",
                  "3:4* | run | wait | free 32",
              });
}

TEST_CASE("micro-batches: sequences in flight are neither scheduled again nor preempted") {
  Scheduler s({16, 4, 8, 64, false});
  for (SequenceId id = 1; id <= 4; ++id)
    REQUIRE(s.add(id, 2, 10).ok());
  const Schedule first = s.schedule(2);
  const Schedule second = s.schedule(2);
  REQUIRE(first.chunks.size() == 2);
  REQUIRE(second.chunks.size() == 2);
  CHECK(first.chunks[0].id == 1);
  CHECK(second.chunks[0].id == 3);
  CHECK(s.in_flight() == 4);
  CHECK(s.schedule(2).empty());  // everything is in flight
  CHECK_THROWS(s.finish(1));     // in flight: a bug
  s.complete(first);
  const Schedule third = s.schedule(2);
  REQUIRE(third.chunks.size() == 2);
  CHECK(third.chunks[0].id == 1);
  CHECK(third.chunks[0].start == 2);
  CHECK(third.chunks[0].tokens == 1);
}

TEST_CASE("a sequence that could never fit the cache is refused at the door") {
  Scheduler s({4, 4, 8, 64, false});
  CHECK(s.add(1, 10, 16).ok());
  const Status too_long = s.add(2, 10, 17);
  CHECK(too_long.code() == ErrorCode::kInvalidArgument);
  CHECK(too_long.message().find("does not fit the KV cache") != std::string::npos);
  CHECK_FALSE(s.add(1, 3, 4).ok());  // duplicate id
  CHECK_FALSE(s.add(3, 0, 4).ok());  // no prompt
}

TEST_CASE("block tables cover every scheduled position and are disjoint") {
  Scheduler s({12, 2, 8, 7, false});
  for (SequenceId id = 1; id <= 3; ++id)
    REQUIRE(s.add(id, 5, 9).ok());
  for (int step = 0; step < 20 && !s.idle(); ++step) {
    const Schedule schedule = s.schedule();
    std::vector<int> owner(12, 0);
    for (const ScheduledChunk& c : schedule.chunks) {
      CHECK(static_cast<std::int64_t>(c.block_table.size()) * 2 >= c.start + c.tokens);
      for (std::int32_t b : c.block_table) {
        CHECK(owner[static_cast<std::size_t>(b)] == 0);
        owner[static_cast<std::size_t>(b)] = 1;
      }
    }
    s.complete(schedule);
    for (const SequenceState& r : std::vector<SequenceState>(s.running_states()))
      if (r.context >= 9) s.finish(r.id);
  }
  CHECK(s.idle());
}

}  // namespace
}  // namespace conveyor

namespace conveyor {
namespace {

TEST_CASE("prefix caching: a prompt that starts like a computed one skips the shared blocks") {
  // 4 tokens per block, 8 tokens per step; prompts of 10 tokens whose first 8 (two
  // blocks) are the same.
  SchedulerConfig config{32, 4, 4, 8, false};
  config.prefix_caching = true;
  Scheduler s(config);
  const std::vector<BlockHash> shared = {11, 22};  // the prompts' two full blocks
  REQUIRE(s.add(1, 10, 12, shared).ok());
  REQUIRE(s.add(2, 10, 12, shared).ok());

  Schedule step = s.schedule();  // 1 prefills 8; the budget is spent
  REQUIRE(step.chunks.size() == 1);
  CHECK(step.chunks[0].tokens == 8);
  s.complete(step);  // 1's two full blocks are computed: registered
  CHECK(s.cached_blocks() == 2);

  step = s.schedule();  // 1 finishes its prompt; 2 joins past the shared 8 tokens
  REQUIRE(step.chunks.size() == 2);
  CHECK(step.chunks[1].id == 2);
  CHECK(step.chunks[1].admitted);
  CHECK(step.chunks[1].start == 8);
  CHECK(step.chunks[1].tokens == 2);
  CHECK(step.chunks[1].block_table[0] == step.chunks[0].block_table[0]);
  CHECK(step.chunks[1].block_table[1] == step.chunks[0].block_table[1]);
  CHECK(step.chunks[1].block_table[2] != step.chunks[0].block_table[2]);
  CHECK(s.prefix_queried_tokens() == 16);  // both looked up their 8 tokens
  CHECK(s.prefix_hit_tokens() == 8);
  s.complete(step);
  s.finish(1);
  s.finish(2);
  CHECK(s.free_blocks() == 32);  // cached blocks count as free
  CHECK(s.cached_blocks() == 2);
}

TEST_CASE("prefix caching: a prompt made only of cached blocks still computes its last one") {
  SchedulerConfig config{32, 4, 4, 64, false};
  config.prefix_caching = true;
  Scheduler s(config);
  REQUIRE(s.add(1, 8, 10, {11, 22}).ok());
  Schedule step = s.schedule();
  s.complete(step);
  s.finish(1);
  REQUIRE(s.add(2, 8, 10, {11, 22}).ok());
  step = s.schedule();
  REQUIRE(step.chunks.size() == 1);
  // Only the first block is reused: the last position's logits must be computed.
  CHECK(step.chunks[0].start == 4);
  CHECK(step.chunks[0].tokens == 4);
  CHECK(step.chunks[0].samples);
}

}  // namespace
}  // namespace conveyor

namespace conveyor {
namespace {

TEST_CASE("prefix caching: cached blocks no one holds are not counted twice at admission") {
  // A leaves 4 cached blocks that no one holds; R runs; B shares A's 4 blocks but
  // needs 3 more plus the watermark. Counting the cached blocks both as B's and as
  // free would admit B only to preempt it again, step after step.
  SchedulerConfig config{10, 4, 4, 64, false, 1};
  config.prefix_caching = true;
  Scheduler s(config);
  REQUIRE(s.add(1, 16, 17, {1, 2, 3, 4}).ok());
  Schedule step = s.schedule();
  s.complete(step);
  s.finish(1);
  REQUIRE(s.cached_blocks() == 4);

  REQUIRE(s.add(2, 16, 24, {9, 10, 11, 12}).ok());        // R: 8 outputs
  REQUIRE(s.add(3, 28, 30, {1, 2, 3, 4, 5, 6, 7}).ok());  // B: 2 outputs
  std::map<SequenceId, int> left = {{2, 8}, {3, 2}};
  for (int i = 0; i < 40 && !s.idle(); ++i) {
    step = s.schedule();
    REQUIRE_FALSE(step.empty());
    s.complete(step);
    for (const ScheduledChunk& c : step.chunks)
      if (c.samples && --left[c.id] == 0) s.finish(c.id);
  }
  CHECK(s.idle());
  CHECK(s.preemptions() == 0);
  CHECK(s.prefix_hit_tokens() == 16);  // B reused A's 4 blocks, counted once
}

TEST_CASE("prefix caching: shared blocks evicted from the device wait in the host tier") {
  // 4 blocks of 2 positions, one sequence at a time, 2 host slots.
  SchedulerConfig config{4, 2, 1, 16, false};
  config.prefix_caching = true;
  config.host_swap_blocks = 2;
  Scheduler scheduler(config);
  // Adds the sequence and runs it to its end (one output token); returns its steps.
  const auto run = [&](SequenceId id, std::int64_t prompt, std::vector<BlockHash> hashes) {
    REQUIRE(scheduler.add(id, prompt, prompt + 1, std::move(hashes)).ok());
    std::vector<Schedule> steps;
    while (!scheduler.idle()) {
      steps.push_back(scheduler.schedule());
      REQUIRE_FALSE(steps.back().empty());
      scheduler.complete(steps.back());
      for (const ScheduledChunk& c : steps.back().chunks)
        if (c.samples) scheduler.finish(c.id);
    }
    return steps;
  };
  // 1 computes blocks {10, 11}; 2 reuses them (a prefix in use); 3 needs every block,
  // so the device evicts them: they go to the host tier rather than away.
  run(1, 5, {10, 11});
  CHECK(run(2, 5, {10, 11}).front().chunks.front().start == 4);
  const std::vector<Schedule> third = run(3, 7, {20, 21, 22});
  REQUIRE(third.front().swaps.size() == 2);
  std::vector<SequenceId> stashed;
  for (const KvSwap& swap : third.front().swaps) {
    CHECK(swap.direction == KvSwap::Direction::kOut);
    CHECK(swap.tier == KvTierId::kHost);
    CHECK(swap.sequence < 0);
    CHECK(swap.blocks.size() == 1);
    stashed.push_back(swap.sequence);
  }
  CHECK(scheduler.tier_cached_blocks(KvTierId::kHost) == 2);
  // 3's own blocks were never reused: when 4 evicts them, they are not kept.
  const std::int64_t hits = scheduler.prefix_hit_tokens();
  const std::vector<Schedule> fourth = run(4, 5, {10, 11});
  const Schedule& first = fourth.front();
  REQUIRE(first.swaps.size() == 2);
  std::vector<SequenceId> restored;
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(first.swaps[i].direction == KvSwap::Direction::kIn);
    restored.push_back(first.swaps[i].sequence);
    CHECK(first.swaps[i].blocks.front() == first.chunks.front().block_table[i]);
  }
  // Evicted last block first, restored in prompt order.
  CHECK(std::set<SequenceId>(restored.begin(), restored.end()) ==
        std::set<SequenceId>(stashed.begin(), stashed.end()));
  CHECK(first.chunks.front().start == 4);  // only the last position is computed
  CHECK(scheduler.prefix_hit_tokens() - hits == 4);
  CHECK(scheduler.tier_cached_blocks(KvTierId::kHost) == 0);
}

}  // namespace
}  // namespace conveyor
