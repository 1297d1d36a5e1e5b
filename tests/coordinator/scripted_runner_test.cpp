// The scheduler actor against a scripted StepRunner instead of a model: it "samples"
// a token that is a function of the position, and can fail chosen sequences, so the
// engine loop's bookkeeping (choices, failures, released ids, steps in flight) is
// checked without weights.
#include <doctest/doctest.h>

#include <deque>
#include <map>
#include <set>
#include <vector>

#include "coordinator/scheduler_actor.h"

namespace conveyor {
namespace {

class ScriptedRunner final : public StepRunner {
 public:
  explicit ScriptedRunner(int depth) : depth_(depth) {}

  int depth() const override { return depth_; }

  void submit(std::shared_ptr<const StepPlan> plan) override {
    for (std::int64_t id : plan->released)
      released.insert(id);
    max_in_flight = std::max(max_in_flight, static_cast<int>(pending_.size()) + 1);
    StepOutput out;
    out.step = plan->step;
    for (const PlannedSequence& s : plan->sequences) {
      // A released sequence comes back only after a preemption, and then starts over.
      if (released.erase(s.id) != 0) CHECK(s.start == 0);
      if (!s.samples) continue;
      const std::int64_t position = s.start + static_cast<std::int64_t>(s.tokens.size());
      SampledToken t;
      t.id = s.id;
      t.sample.token = static_cast<std::int32_t>(1 + position % 5);
      if (fail_at.count(s.id) != 0 && fail_at[s.id] == position) {
        t.status = Status(ErrorCode::kInternal, "sampling: no finite logit");
      }
      out.samples.push_back(t);
    }
    pending_.push_back(std::move(out));
  }

  StepOutput next_result() override {
    REQUIRE_FALSE(pending_.empty());
    StepOutput out = std::move(pending_.front());
    pending_.pop_front();
    return out;
  }

  std::map<std::int64_t, std::int64_t> fail_at;  // sequence id -> position it fails at
  std::set<std::int64_t> released;               // released and not planned since
  int max_in_flight = 0;

 private:
  int depth_;
  std::deque<StepOutput> pending_;
};

SchedulerActorOptions options(std::int64_t blocks = 64) {
  SchedulerActorOptions o;
  o.scheduler = {blocks, 4, 8, 32, false};
  o.vocab_size = 16;
  o.context_limit = 256;
  return o;
}

EngineRequest request(std::uint64_t key, std::int32_t n = 1, std::int32_t max_tokens = 6) {
  EngineRequest r;
  r.key = key;
  r.prompt = {1, 2, 3, 4, 5};
  r.sampling.temperature = 0;
  r.sampling.max_tokens = max_tokens;
  r.n = n;
  return r;
}

std::map<std::uint64_t, EngineResult> run(SchedulerActor& actor, std::vector<EngineRequest> rs) {
  Channel<EngineRequest> channel;
  for (auto& r : rs)
    channel.send(std::move(r));
  channel.close();
  std::map<std::uint64_t, EngineResult> results;
  actor.run(channel, [&](EngineResult r) {
    CHECK(results.count(r.key) == 0);  // exactly one result per request
    results.emplace(r.key, std::move(r));
  });
  return results;
}

TEST_CASE("a choice that cannot be sampled fails its request alone") {
  ScriptedRunner runner(1);
  SchedulerActor actor(runner, options());
  // Sequence ids follow the order requests and their choices are added: request 1
  // is sequence 1; request 2's choices are sequences 2 and 3.
  runner.fail_at[1] = 7;  // request 1, at its third generated token
  runner.fail_at[3] = 5;  // request 2's second choice, at its first
  const auto results = run(actor, {request(0), request(1), request(2, 2), request(3)});
  REQUIRE(results.size() == 4);
  for (std::uint64_t key : {0u, 3u}) {
    CAPTURE(key);
    REQUIRE(results.at(key).status.ok());
    REQUIRE(results.at(key).choices.size() == 1);
    CHECK(results.at(key).choices[0].tokens == std::vector<std::int32_t>{1, 2, 3, 4, 5, 1});
  }
  for (std::uint64_t key : {1u, 2u}) {
    CAPTURE(key);
    CHECK(results.at(key).status.code() == ErrorCode::kInternal);
    CHECK(results.at(key).status.message().find("no finite logit") != std::string::npos);
    CHECK(results.at(key).choices.empty());
  }
  CHECK(actor.stats().finished == 2);
  CHECK(actor.stats().failed == 2);
  // The failed request's sibling choice left with it: all five sequences released
  // (the last ones with the plan after them, if there was one).
  CHECK(runner.released.count(1) == 1);
  CHECK(runner.released.count(3) == 1);
}

TEST_CASE("a failing first choice takes its sibling from the same step along, and only it") {
  for (int depth : {1, 2}) {
    CAPTURE(depth);
    ScriptedRunner runner(depth);
    SchedulerActor actor(runner, options());
    runner.fail_at[0] = 5;  // request 0's first choice, at its first token
    const auto results = run(actor, {request(0, 2), request(1), request(2, 2)});
    REQUIRE(results.size() == 3);
    CHECK(results.at(0).status.code() == ErrorCode::kInternal);
    CHECK(results.at(0).choices.empty());
    for (std::uint64_t key : {1u, 2u}) {
      CAPTURE(key);
      REQUIRE(results.at(key).status.ok());
      for (const EngineChoice& c : results.at(key).choices)
        CHECK(c.tokens.size() == 6);
    }
  }
}

TEST_CASE("steps in flight: as many as the runner is deep, and every request ends once") {
  for (int depth : {1, 2, 3}) {
    CAPTURE(depth);
    ScriptedRunner runner(depth);
    SchedulerActor actor(runner, options(16));  // 16 blocks of 4: preemption happens
    std::vector<EngineRequest> rs;
    for (std::uint64_t key = 0; key < 12; ++key)
      rs.push_back(request(key, key % 3 == 0 ? 2 : 1, 10));
    const auto results = run(actor, std::move(rs));
    CHECK(results.size() == 12);
    for (const auto& [key, r] : results) {
      CAPTURE(key);
      REQUIRE(r.status.ok());
      for (const EngineChoice& c : r.choices)
        CHECK(c.tokens.size() == 10);
    }
    CHECK(runner.max_in_flight <= depth);
    if (depth > 1) CHECK(runner.max_in_flight == depth);
  }
}

}  // namespace
}  // namespace conveyor
