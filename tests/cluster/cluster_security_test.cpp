// CurveZMQ on both of the coordinator's sockets: a listed producer's job runs end to
// end on a listed worker; a stranger's key, or no key at all, gets nothing (submit
// fails within bounded time, a worker never joins); a key file that is missing stops
// the coordinator at start with a message naming it.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "tests/cluster/test_cluster.h"

namespace {

using namespace conveyor::testing;

// The bounds for a refused producer: its --timeout, and how long the test waits.
constexpr const char* kRefusedTimeout = "3";
constexpr std::chrono::seconds kRefusedBound{90};

void keygen(const std::filesystem::path& dir, const std::string& name) {
  ChildProcess keygen({conveyor_binary(), "keygen", "--out", dir.string(), "--name", name},
                      dir.parent_path() / ("keygen-" + name + ".log"));
  REQUIRE_MESSAGE(keygen.wait_for_exit(kStartTimeout) == 0, keygen.log());
}

TEST_CASE("cluster: CURVE admits only the listed producers and workers") {
  if (skip_without_model()) return;
  TestCluster cluster("  stages: 1\n");
  INFO(cluster.logs());
  const std::filesystem::path keys = cluster.file("keys");
  const std::filesystem::path producers = cluster.file("producer-keys");
  const std::filesystem::path workers = cluster.file("worker-keys");
  for (const char* name : {"server", "producer", "worker", "stranger"})
    keygen(keys, name);
  std::filesystem::create_directories(producers);
  std::filesystem::create_directories(workers);
  std::filesystem::copy_file(keys / "producer.pub", producers / "producer.pub");
  std::filesystem::copy_file(keys / "worker.pub", workers / "worker.pub");
  const auto key = [&](const char* file) { return (keys / file).string(); };
  cluster.write_config("  stages: 1\n  server_key: " + key("server.key") + "\n  producer_keys: " +
                       producers.string() + "\n  worker_keys: " + workers.string() + "\n");

  ChildProcess& coordinator = cluster.start_coordinator();
  ChildProcess& intruder = cluster.start_worker(
      "intruder", {"--client-key", key("stranger.key"), "--server-key", key("server.pub")});
  cluster.start_worker("w1",
                       {"--client-key", key("worker.key"), "--server-key", key("server.pub")});
  const std::filesystem::path input = cluster.file("stories.jsonl");
  write_story_input(input, 8);

  // The refused producers, started first: they wait out their attempts meanwhile.
  auto stranger = cluster.start_submit(
      {"--input", input.string(), "--output", cluster.file("stranger.jsonl").string(), "--wait",
       "--timeout", kRefusedTimeout, "--server-key", key("server.pub"), "--client-key",
       key("stranger.key")},
      "submit-stranger.log");
  auto plain = cluster.start_submit(
      {"--input", input.string(), "--output", cluster.file("plain.jsonl").string(), "--wait",
       "--timeout", kRefusedTimeout},
      "submit-plain.log");

  const SubmitRun allowed = cluster.submit(
      {"--input", input.string(), "--output", cluster.file("out.jsonl").string(), "--wait",
       "--server-key", key("server.pub"), "--client-key", key("producer.key")},
      "submit-allowed.log");
  CHECK(allowed.exit_code == 0);
  CHECK(line_count(cluster.file("out.jsonl")) == 8);
  CHECK(coordinator.log().find("worker w1 joined") != std::string::npos);

  const SubmitRun stranger_run = TestCluster::finish_submit(*stranger, kRefusedBound);
  const SubmitRun plain_run = TestCluster::finish_submit(*plain, kRefusedBound);
  CHECK(stranger_run.exit_code != 0);
  CHECK(plain_run.exit_code != 0);
  CHECK(line_count(cluster.file("stranger.jsonl")) == 0);
  CHECK(line_count(cluster.file("plain.jsonl")) == 0);

  // The worker with an unknown key has had all that time to join, and never did.
  CHECK(intruder.running());
  CHECK(coordinator.log().find("worker intruder") == std::string::npos);
}

TEST_CASE("cluster: a configured key file that is missing stops the coordinator") {
  if (skip_without_model()) return;
  TestCluster cluster("");
  INFO(cluster.logs());
  const std::filesystem::path keys = cluster.file("keys");
  keygen(keys, "server");
  const std::string missing = cluster.file("no-such-producers.pub").string();
  cluster.write_config("  server_key: " + (keys / "server.key").string() + "\n  producer_keys: " +
                       missing + "\n  worker_keys: " + (keys / "server.pub").string() + "\n");
  ChildProcess& coordinator = cluster.start_coordinator();
  const std::optional<int> code = coordinator.wait_for_exit(kStartTimeout);
  REQUIRE(code.has_value());
  CHECK(*code != 0);
  CHECK(coordinator.log().find(missing) != std::string::npos);

  // The same for the server's own key pair.
  const std::string missing_pair = cluster.file("no-such-server.key").string();
  cluster.write_config("  server_key: " + missing_pair +
                       "\n  producer_keys: " + (keys / "server.pub").string() +
                       "\n  worker_keys: " + (keys / "server.pub").string() + "\n");
  ChildProcess& again = cluster.start_coordinator();
  const std::optional<int> again_code = again.wait_for_exit(kStartTimeout);
  REQUIRE(again_code.has_value());
  CHECK(*again_code != 0);
  CHECK(again.log().find(missing_pair) != std::string::npos);
}

}  // namespace
