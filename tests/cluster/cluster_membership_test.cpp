// Membership under a short liveness period: three workers loading a whole model at
// once on a small machine may each be busy for longer than the coordinator's liveness
// period. A worker loading its stage is not taken for dead (the stage timeout bounds
// the load instead), and a worker the coordinator no longer knows is told so and joins
// again, so that every worker ends up serving.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "tests/cluster/test_cluster.h"

namespace {

using namespace conveyor::testing;

TEST_CASE("cluster: workers busy loading their stages for longer than liveness all serve") {
  if (skip_without_model()) return;
  TestCluster cluster("  stages: auto\n",
                      "  heartbeat_seconds: 0.2\n"
                      "  liveness_seconds: 1.0\n"
                      "  plan_delay_seconds: 0.3\n");
  INFO(cluster.logs());
  ChildProcess& coordinator = cluster.start_coordinator();
  for (const char* name : {"w1", "w2", "w3"})
    cluster.start_worker(name);

  // Three workers load a whole model each at the same time, which can take longer than
  // the liveness period on a small machine; all three must serve in the end.
  std::set<std::string> serving;
  const bool all_serve = wait_until(
      [&] {
        serving.clear();
        for (const LiveReplica& r : live_replicas(coordinator.log()))
          serving.insert(r.workers.begin(), r.workers.end());
        return serving.size() == 3;
      },
      std::chrono::seconds(20));
  CHECK_MESSAGE(all_serve, serving.size(), " of 3 workers serve");
}

}  // namespace
