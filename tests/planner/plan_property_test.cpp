// Randomised properties (fixed seed): every plan is well formed, splits are optimal for their
// order and over all orders, auto picks the fewest stages that fit, and every refusal is right.
#include <doctest/doctest.h>

#include <random>

#include "coordinator/planner/cluster_plan.h"
#include "coordinator/planner/stage_split.h"
#include "tests/planner/plan_checks.h"

namespace conveyor {
namespace {

using namespace conveyor::testing;

class Generator {
 public:
  explicit Generator(std::uint32_t seed) : random_(seed) {}

  std::int64_t integer(std::int64_t low, std::int64_t high) {
    return std::uniform_int_distribution<std::int64_t>(low, high)(random_);
  }
  std::uint64_t bytes(std::uint64_t low, std::uint64_t high) {
    return std::uniform_int_distribution<std::uint64_t>(low, high)(random_);
  }
  bool chance(double p) { return std::bernoulli_distribution(p)(random_); }

  ModelFootprint model(std::int64_t max_layers) {
    ModelFootprint model;
    const std::int64_t layers = integer(1, max_layers);
    for (std::int64_t i = 0; i < layers; ++i)
      model.layer_bytes.push_back(bytes(1, 100));
    model.embedding_bytes = chance(0.5) ? bytes(0, 150) : 0;
    model.head_bytes = chance(0.5) ? bytes(0, 150) : 0;
    model.kv_bytes_per_layer = bytes(0, 10);
    return model;
  }

  std::vector<WorkerCapacity> workers(std::int64_t max_workers, std::uint64_t total) {
    static constexpr double kSpeeds[] = {0.5, 1.0, 1.5, 2.0, 3.0};
    std::vector<WorkerCapacity> result;
    const std::int64_t count = integer(1, max_workers);
    for (std::int64_t i = 0; i < count; ++i) {
      result.push_back({worker_id(i), bytes(0, total + total / 5), kSpeeds[integer(0, 4)]});
    }
    return result;
  }

 private:
  std::mt19937 random_;
};

std::uint64_t total_bytes(const ModelFootprint& model) {
  return stage_need(model, 0, static_cast<std::int64_t>(model.layer_bytes.size()), 0, 1);
}

TEST_CASE("property: the bottleneck DP equals brute force over every split, for any order") {
  Generator generate(7);
  for (int round = 0; round < 500; ++round) {
    const ModelFootprint model = generate.model(12);
    const auto layers = static_cast<std::int64_t>(model.layer_bytes.size());
    const std::vector<WorkerCapacity> row =
        generate.workers(std::min<std::int64_t>(layers, 5), total_bytes(model));
    planner::WorkerRow pointers;
    for (const WorkerCapacity& worker : row)
      pointers.push_back(&worker);
    const planner::LayerTable table(model);

    const std::optional<double> expected = brute_force_bottleneck(model, row);
    const std::optional<planner::Split> split = planner::best_split(table, pointers);
    CHECK(planner::split_fits(table, pointers) == expected.has_value());
    REQUIRE(split.has_value() == expected.has_value());
    if (!split) continue;
    CHECK(split->bottleneck == doctest::Approx(*expected));
    // The split itself achieves what it claims and fits.
    REQUIRE(split->ends.size() == row.size());
    CHECK(split->ends.back() == layers);
    std::int64_t first = 0;
    double worst = 0.0;
    for (std::size_t k = 0; k < row.size(); ++k) {
      const std::int64_t end = split->ends[k];
      CHECK(end > first);
      CHECK(stage_need(model, first, end, k, row.size()) <= row[k].memory_bytes);
      worst = std::max(worst, stage_time(model, first, end, row[k].speed));
      first = end;
    }
    CHECK(worst == doctest::Approx(split->bottleneck));
  }
}

TEST_CASE("property: plans are well formed, optimal per replica, and refusals are justified") {
  Generator generate(20240601);
  int planned = 0;
  for (int round = 0; round < 400; ++round) {
    const ModelFootprint model = generate.model(9);
    const auto layers = static_cast<std::int64_t>(model.layer_bytes.size());
    const std::vector<WorkerCapacity> workers = generate.workers(5, total_bytes(model));
    const auto count = static_cast<std::int64_t>(workers.size());
    PlanRequest request;
    if (generate.chance(0.4)) request.stages = generate.integer(1, 5);
    if (generate.chance(0.3)) request.max_replicas = generate.integer(1, 3);
    CAPTURE(round);

    const Expected<ClusterPlan> plan = plan_cluster(workers, model, request);
    if (!plan.ok()) {
      const ErrorCode code = plan.status().code();
      if (request.stages > layers) {
        CHECK(code == ErrorCode::kInvalidArgument);
      } else if (request.stages > count) {
        CHECK(code == ErrorCode::kUnavailable);
      } else {
        REQUIRE(code == ErrorCode::kResourceExhausted);
        const std::int64_t most = std::min(count, layers);
        for (std::int64_t s = request.stages > 0 ? request.stages : 1;
             s <= (request.stages > 0 ? request.stages : most); ++s) {
          CHECK_FALSE(any_arrangement_fits(model, workers, static_cast<std::size_t>(s)));
        }
      }
      continue;
    }
    ++planned;
    check_well_formed(*plan, workers, model);
    const auto stages = static_cast<std::int64_t>(plan->replicas.front().stages.size());
    const auto replicas = static_cast<std::int64_t>(plan->replicas.size());
    if (request.stages > 0) {
      CHECK(stages == request.stages);
    } else {
      for (std::int64_t s = 1; s < stages; ++s) {
        CHECK_FALSE(any_arrangement_fits(model, workers, static_cast<std::size_t>(s)));
      }
    }
    CHECK(replicas <= count / stages);
    if (request.max_replicas > 0) CHECK(replicas <= request.max_replicas);
    for (const ReplicaPlan& replica : plan->replicas) {
      const std::vector<WorkerCapacity> row = row_of(replica, workers);
      const std::optional<double> for_order = brute_force_bottleneck(model, row);
      const std::optional<double> for_members = brute_force_best_order(model, row);
      REQUIRE(for_order.has_value());
      REQUIRE(for_members.has_value());
      CHECK(replica.bottleneck() == doctest::Approx(*for_order));
      CHECK(replica.bottleneck() == doctest::Approx(*for_members));
    }
  }
  CHECK(planned > 100);  // the generator exercises success as well as refusal
}

}  // namespace
}  // namespace conveyor
