// The planner's scenarios: how many stages and replicas a set of workers yields, which worker
// goes where, and what happens when workers leave.
#include "coordinator/planner/cluster_plan.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <limits>

#include "tests/planner/plan_checks.h"

namespace conveyor {
namespace {

using testing::check_well_formed;
using testing::equal_workers;
using testing::uniform_model;
using testing::worker_id;

ClusterPlan plan_ok(const std::vector<WorkerCapacity>& workers, const ModelFootprint& model,
                    PlanRequest request = {}) {
  Expected<ClusterPlan> plan = plan_cluster(workers, model, request);
  REQUIRE_MESSAGE(plan.ok(), plan.status().to_string());
  check_well_formed(*plan, workers, model);
  return std::move(plan).value();
}

std::vector<std::string> stage_workers(const ReplicaPlan& replica) {
  std::vector<std::string> ids;
  for (const StageSlot& stage : replica.stages)
    ids.push_back(stage.worker_id);
  return ids;
}

TEST_CASE("one worker holds the whole model in one stage") {
  ModelFootprint model = uniform_model(8, 100);
  model.embedding_bytes = 50;
  model.head_bytes = 70;
  model.kv_bytes_per_layer = 10;
  const ClusterPlan plan = plan_ok({{"solo", 1000, 2.0}}, model);
  REQUIRE(plan.replicas.size() == 1);
  REQUIRE(plan.replicas[0].stages.size() == 1);
  const StageSlot& stage = plan.replicas[0].stages[0];
  CHECK(stage.worker_id == "solo");
  CHECK(stage.first_layer == 0);
  CHECK(stage.end_layer == 8);
  CHECK(stage.bytes == 800 + 80 + 50 + 70);
  CHECK(stage.relative_time == doctest::Approx(0.5));
  CHECK(plan.replicas[0].bottleneck() == doctest::Approx(0.5));
  CHECK(plan.idle_workers.empty());
}

TEST_CASE("auto: workers that each hold the model become data-parallel replicas of one stage") {
  const ClusterPlan plan = plan_ok(equal_workers(3, 10'000), uniform_model(10, 100));
  REQUIRE(plan.replicas.size() == 3);
  for (const ReplicaPlan& replica : plan.replicas)
    CHECK(replica.stages.size() == 1);
  CHECK(plan.idle_workers.empty());
}

TEST_CASE("auto: workers that each hold 40% of the model form one pipeline of three stages") {
  const ModelFootprint model = uniform_model(10, 100);  // 1000 bytes

  SUBCASE("three workers: one replica, nobody idle") {
    const ClusterPlan plan = plan_ok(equal_workers(3, 400), model);
    REQUIRE(plan.replicas.size() == 1);
    CHECK(plan.replicas[0].stages.size() == 3);
    CHECK(plan.replicas[0].bottleneck() == doctest::Approx(0.4));  // 4 + 3 + 3 layers
    CHECK(plan.idle_workers.empty());
  }
  SUBCASE("five workers: still one replica (two would need six), two idle") {
    const ClusterPlan plan = plan_ok(equal_workers(5, 400), model);
    REQUIRE(plan.replicas.size() == 1);
    CHECK(plan.replicas[0].stages.size() == 3);
    CHECK(plan.idle_workers.size() == 2);
  }
  SUBCASE("six workers: two replicas") {
    const ClusterPlan plan = plan_ok(equal_workers(6, 400), model);
    REQUIRE(plan.replicas.size() == 2);
    CHECK(plan.replicas[0].stages.size() == 3);
    CHECK(plan.replicas[1].stages.size() == 3);
    CHECK(plan.idle_workers.empty());
  }
}

TEST_CASE("auto: a worker too small for any stage is left idle") {
  const ModelFootprint model = uniform_model(4, 100);
  const ClusterPlan plan = plan_ok({{"big", 1000, 1.0}, {"tiny", 50, 1.0}}, model);
  REQUIRE(plan.replicas.size() == 1);
  CHECK(stage_workers(plan.replicas[0]) == std::vector<std::string>{"big"});
  CHECK(plan.idle_workers == std::vector<std::string>{"tiny"});
}

TEST_CASE("auto: the snake deal pairs large workers with small ones so both replicas fit") {
  // 1000 bytes: 700 + 300 fits, 300 + 300 does not; dealing the two large workers into one
  // replica would leave the other short.
  const ModelFootprint model = uniform_model(10, 100);
  const std::vector<WorkerCapacity> workers{
      {"l1", 700, 1.0}, {"l2", 700, 1.0}, {"s1", 300, 1.0}, {"s2", 300, 1.0}};
  const ClusterPlan plan = plan_ok(workers, model);
  REQUIRE(plan.replicas.size() == 2);
  CHECK(plan.idle_workers.empty());
}

TEST_CASE("fixed stages: two stages from three workers leave one idle") {
  const ModelFootprint model = uniform_model(6, 100);
  const ClusterPlan plan = plan_ok(equal_workers(3, 10'000), model, {.stages = 2});
  REQUIRE(plan.replicas.size() == 1);
  CHECK(plan.replicas[0].stages.size() == 2);
  CHECK(plan.replicas[0].stages[0].end_layer == 3);  // equal workers split evenly
  CHECK(plan.idle_workers.size() == 1);
}

TEST_CASE("max_replicas caps the data-parallel width") {
  const ClusterPlan plan =
      plan_ok(equal_workers(3, 10'000), uniform_model(4, 100), {.max_replicas = 2});
  CHECK(plan.replicas.size() == 2);
  CHECK(plan.idle_workers.size() == 1);
}

TEST_CASE("a faster worker gets more layers and the bottleneck is balanced") {
  const ModelFootprint model = uniform_model(8, 100);
  const std::vector<WorkerCapacity> workers{{"slow", 10'000, 1.0}, {"fast", 10'000, 3.0}};
  const ClusterPlan plan = plan_ok(workers, model, {.stages = 2});
  REQUIRE(plan.replicas.size() == 1);
  for (const StageSlot& stage : plan.replicas[0].stages) {
    const std::int64_t layers = stage.end_layer - stage.first_layer;
    CHECK(layers == (stage.worker_id == "fast" ? 6 : 2));
  }
  CHECK(plan.replicas[0].bottleneck() == doctest::Approx(0.25));
}

TEST_CASE("layer cost follows layer bytes: heavy layers are spread out") {
  ModelFootprint model;
  model.layer_bytes = {400, 100, 100, 100, 100, 100, 100, 400};
  const ClusterPlan plan = plan_ok(equal_workers(2, 10'000), model, {.stages = 2});
  // 400+100+100+100 = 700 on each side: the even split by bytes, not by count.
  CHECK(plan.replicas[0].stages[0].end_layer == 4);
  CHECK(plan.replicas[0].bottleneck() == doctest::Approx(0.5));
}

TEST_CASE("memory-tight: only the large worker can carry the embedding, so it goes first") {
  ModelFootprint model = uniform_model(4, 100);
  model.embedding_bytes = 300;
  // By id "a-small" would come first; it cannot hold the embedding plus a layer.
  const std::vector<WorkerCapacity> workers{{"a-small", 300, 1.0}, {"b-big", 500, 1.0}};
  const ClusterPlan plan = plan_ok(workers, model, {.stages = 2});
  CHECK(stage_workers(plan.replicas[0]) == std::vector<std::string>{"b-big", "a-small"});
}

TEST_CASE("memory-tight: the large worker carries the head when the head is the extra") {
  ModelFootprint model = uniform_model(4, 100);
  model.head_bytes = 300;
  const std::vector<WorkerCapacity> workers{{"a-big", 500, 1.0}, {"b-small", 300, 1.0}};
  const ClusterPlan plan = plan_ok(workers, model, {.stages = 2});
  CHECK(stage_workers(plan.replicas[0]) == std::vector<std::string>{"b-small", "a-big"});
}

TEST_CASE("memory-tight: the two large workers take both ends, the small one the middle") {
  ModelFootprint model = uniform_model(3, 100);
  model.embedding_bytes = 300;
  model.head_bytes = 300;
  const std::vector<WorkerCapacity> workers{{"a", 100, 1.0}, {"b", 400, 1.0}, {"c", 400, 1.0}};
  const ClusterPlan plan = plan_ok(workers, model);  // auto finds S = 3
  REQUIRE(plan.replicas.size() == 1);
  const std::vector<std::string> order = stage_workers(plan.replicas[0]);
  REQUIRE(order.size() == 3);
  CHECK(order[1] == "a");
}

TEST_CASE("memory-tight with many stages: the greedy orderings still place the large ends") {
  // Eight stages are past the exhaustive search; the embedding and head each need one of the
  // two large workers.
  ModelFootprint model = uniform_model(8, 100);
  model.embedding_bytes = 300;
  model.head_bytes = 300;
  std::vector<WorkerCapacity> workers = equal_workers(6, 100);
  workers.push_back({"big-1", 400, 1.0});
  workers.push_back({"big-2", 400, 1.0});
  const ClusterPlan plan = plan_ok(workers, model);
  REQUIRE(plan.replicas.size() == 1);
  const std::vector<std::string> order = stage_workers(plan.replicas[0]);
  REQUIRE(order.size() == 8);
  CHECK(order.front().starts_with("big"));
  CHECK(order.back().starts_with("big"));
}

TEST_CASE("re-planning after a worker leaves gives a valid, smaller plan") {
  const ModelFootprint model = uniform_model(10, 100);
  std::vector<WorkerCapacity> workers = equal_workers(6, 400);
  const ClusterPlan before = plan_ok(workers, model);
  CHECK(before.replicas.size() == 2);

  workers.erase(workers.begin() + 2);  // w2 is gone
  const ClusterPlan after = plan_ok(workers, model);
  REQUIRE(after.replicas.size() == 1);
  CHECK(after.replicas[0].stages.size() == 3);
  CHECK(after.idle_workers.size() == 2);
  for (const StageSlot& stage : after.replicas[0].stages)
    CHECK(stage.worker_id != "w2");

  workers.resize(2);  // now too few to hold the model at all
  CHECK(plan_cluster(workers, model, {}).status().code() == ErrorCode::kResourceExhausted);
}

TEST_CASE("the plan does not depend on the order workers registered in") {
  ModelFootprint model = uniform_model(12, 100);
  model.embedding_bytes = 150;
  std::vector<WorkerCapacity> workers{
      {"a", 600, 1.0}, {"b", 500, 2.0}, {"c", 500, 2.0}, {"d", 700, 0.5}, {"e", 450, 1.5}};
  const ClusterPlan first = plan_ok(workers, model);
  std::reverse(workers.begin(), workers.end());
  const ClusterPlan second = plan_ok(workers, model);
  CHECK(first.summary() == second.summary());
}

TEST_CASE("summary: one line per replica, then the idle workers") {
  const ClusterPlan plan = plan_ok(equal_workers(5, 400), uniform_model(10, 100));
  const std::string text = plan.summary();
  CHECK(std::count(text.begin(), text.end(), '\n') == 2);
  CHECK(text.starts_with("replica 0: "));
  CHECK(text.find("[0,4)") != std::string::npos);
  CHECK(text.find("\nidle: ") != std::string::npos);
}

TEST_CASE("large plans stay quick: 300 layers over many workers") {
  ModelFootprint model = uniform_model(300, 1000);
  model.embedding_bytes = 5000;
  model.head_bytes = 5000;
  model.kv_bytes_per_layer = 100;
  std::vector<WorkerCapacity> workers;
  for (int i = 0; i < 24; ++i) {
    workers.push_back(
        {worker_id(i), static_cast<std::uint64_t>(60'000 + 1000 * (i % 7)), 1.0 + 0.25 * (i % 3)});
  }
  const ClusterPlan plan = plan_ok(workers, model);  // 330000 bytes: six stages
  CHECK(plan.replicas.size() == 4);
  CHECK(plan.replicas[0].stages.size() == 6);
  const ClusterPlan wide = plan_ok(workers, model, {.stages = 12});
  CHECK(wide.replicas.size() == 2);
}

TEST_CASE("errors: nothing to plan with, or nothing that fits") {
  const ModelFootprint model = uniform_model(4, 100);

  SUBCASE("no workers") {
    const Status status = plan_cluster({}, model, {}).status();
    CHECK(status.code() == ErrorCode::kUnavailable);
    CHECK(status.message() == "no workers registered");
  }
  SUBCASE("the model fits no arrangement: the message names its size and the largest memory") {
    const Status status = plan_cluster({{"a", 150, 1.0}, {"b", 170, 1.0}}, model, {}).status();
    CHECK(status.code() == ErrorCode::kResourceExhausted);
    CHECK(status.message().find("400 bytes") != std::string::npos);
    CHECK(status.message().find("170 bytes") != std::string::npos);
  }
  SUBCASE("fixed stages that do not fit, though another count would") {
    const Status status = plan_cluster(equal_workers(3, 200), model, {.stages = 1}).status();
    CHECK(status.code() == ErrorCode::kResourceExhausted);
  }
  SUBCASE("fixed stages beyond the workers registered") {
    const Status status = plan_cluster(equal_workers(2, 1000), model, {.stages = 3}).status();
    CHECK(status.code() == ErrorCode::kUnavailable);
  }
}

TEST_CASE("errors: invalid input is refused") {
  const ModelFootprint model = uniform_model(4, 100);
  const std::vector<WorkerCapacity> workers = equal_workers(2, 1000);
  auto code = [](const std::vector<WorkerCapacity>& w, const ModelFootprint& m, PlanRequest r) {
    return plan_cluster(w, m, r).status().code();
  };

  CHECK(code(equal_workers(8, 1000), model, {.stages = 5}) == ErrorCode::kInvalidArgument);
  CHECK(code(workers, uniform_model(0, 100), {}) == ErrorCode::kInvalidArgument);
  ModelFootprint hollow;
  hollow.layer_bytes = {100, 0, 100};
  CHECK(code(workers, hollow, {}) == ErrorCode::kInvalidArgument);
  CHECK(code({{"a", 1000, 0.0}}, model, {}) == ErrorCode::kInvalidArgument);
  CHECK(code({{"a", 1000, -1.0}}, model, {}) == ErrorCode::kInvalidArgument);
  CHECK(code({{"a", 1000, std::numeric_limits<double>::quiet_NaN()}}, model, {}) ==
        ErrorCode::kInvalidArgument);
  CHECK(code({{"a", 1000, std::numeric_limits<double>::infinity()}}, model, {}) ==
        ErrorCode::kInvalidArgument);
  CHECK(code({{"a", 1000, 1.0}, {"a", 1000, 1.0}}, model, {}) == ErrorCode::kInvalidArgument);
  CHECK(code({{"", 1000, 1.0}}, model, {}) == ErrorCode::kInvalidArgument);
  CHECK(code(workers, model, {.stages = -1}) == ErrorCode::kInvalidArgument);
  CHECK(code(workers, model, {.max_replicas = -1}) == ErrorCode::kInvalidArgument);

  ModelFootprint huge = uniform_model(2, std::numeric_limits<std::uint64_t>::max() / 2 + 1);
  CHECK(code(workers, huge, {}) == ErrorCode::kInvalidArgument);
  huge = uniform_model(2, 1);
  huge.kv_bytes_per_layer = std::numeric_limits<std::uint64_t>::max();
  CHECK(code(workers, huge, {}) == ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace conveyor
