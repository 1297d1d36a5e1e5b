// A cluster answers as `conveyor run` does: one coordinator and three worker
// processes on loopback, the stages planned automatically or given, linked over UCX;
// every output line (choices, texts, finish reasons) equal to the single-process
// run's, and the same error lines.
#include <doctest/doctest.h>

#include <filesystem>
#include <set>
#include <string>

#include "tests/cluster/test_cluster.h"

namespace {

using namespace conveyor::testing;

const std::filesystem::path kExamplePrompts =
    std::filesystem::path(CONVEYOR_SOURCE_DIR) / "examples" / "prompts.jsonl";

TEST_CASE("cluster: automatic stages on three workers answer as conveyor run does") {
  if (skip_without_model()) return;
  TestCluster cluster("  stages: auto\n");
  INFO(cluster.logs());
  cluster.start_coordinator();
  for (const char* name : {"w1", "w2", "w3"})
    cluster.start_worker(name);
  const std::filesystem::path stories = cluster.file("stories.jsonl");
  write_story_input(stories, 24);

  // Two jobs at once: the example file (chat requests, seeded sampling, n > 1 and bad
  // lines) and plain completions.
  auto examples = cluster.start_submit({"--input", kExamplePrompts.string(), "--output",
                                        cluster.file("examples.jsonl").string(), "--wait"},
                                       "submit-examples.log");
  auto story_job = cluster.start_submit({"--input", stories.string(), "--output",
                                         cluster.file("stories-out.jsonl").string(), "--wait"},
                                        "submit-stories.log");
  const SubmitRun examples_run = TestCluster::finish_submit(*examples, kJobTimeout);
  const SubmitRun stories_run = TestCluster::finish_submit(*story_job, kJobTimeout);
  CHECK(examples_run.exit_code == 2);  // the example file has bad lines
  CHECK(stories_run.exit_code == 0);

  check_matches_reference(kExamplePrompts, cluster.file("examples.jsonl"),
                          cluster.file("examples.errors.jsonl"));
  CHECK(!reference_for(kExamplePrompts).error_ids.empty());
  check_matches_reference(stories, cluster.file("stories-out.jsonl"),
                          cluster.file("stories-out.errors.jsonl"));

  // Automatic planning puts the small model whole on each worker: every worker serves.
  std::set<std::string> serving;
  for (const LiveReplica& r : live_replicas(cluster.coordinator().log())) {
    CHECK(r.workers.size() == 1);
    serving.insert(r.workers.begin(), r.workers.end());
  }
  CHECK(serving == std::set<std::string>{"w1", "w2", "w3"});
}

TEST_CASE("cluster: three explicit stages linked over UCX answer as conveyor run does") {
  if (skip_without_model()) return;
  TestCluster cluster("  stages: 3\n");
  INFO(cluster.logs());
  ChildProcess& coordinator = cluster.start_coordinator();
  for (const char* name : {"w1", "w2", "w3"})
    cluster.start_worker(name);
  const std::filesystem::path input = cluster.file("stories.jsonl");
  write_story_input(input, 24);

  const SubmitRun run = cluster.submit(
      {"--input", input.string(), "--output", cluster.file("out.jsonl").string(), "--wait"},
      "submit.log");
  CHECK(run.exit_code == 0);
  check_matches_reference(input, cluster.file("out.jsonl"), cluster.file("out.errors.jsonl"));

  // One replica of all three workers, stages 2 and 3 receiving over UCX.
  const std::string log = coordinator.log();
  const std::vector<LiveReplica> replicas = live_replicas(log);
  REQUIRE(replicas.size() == 1);
  CHECK(std::set<std::string>(replicas[0].workers.begin(), replicas[0].workers.end()) ==
        std::set<std::string>{"w1", "w2", "w3"});
  for (int stage = 2; stage <= 3; ++stage) {
    const std::string receiver = "replica 1 stage " + std::to_string(stage) + " on " +
                                 replicas[0].workers[static_cast<std::size_t>(stage - 1)] +
                                 " receives activations at 127.0.0.1:";
    const std::size_t at = log.find(receiver);
    REQUIRE_MESSAGE(at != std::string::npos, "no line: ", receiver);
    CHECK(log.substr(at, log.find('\n', at) - at).find(" over UCX") != std::string::npos);
  }
}

}  // namespace
