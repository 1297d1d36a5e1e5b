// Workers in network namespaces of their own, as on separate hosts: they reach the
// coordinator through a bridge, each announces its own namespace's address, and the
// activations of the second stage arrive there over UCX. Needs root; skipped without.
#include <doctest/doctest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "tests/cluster/network_namespaces.h"
#include "tests/cluster/test_cluster.h"

namespace {

using namespace conveyor::testing;

TEST_CASE("cluster: workers in separate network namespaces link over UCX") {
  if (skip_without_model()) return;
  std::string why;
  // Made before the cluster, so that it is removed after the processes in it.
  const std::unique_ptr<NetworkNamespaces> net = NetworkNamespaces::create(2, why);
  if (!net) {
    MESSAGE("skipped: cannot make network namespaces (needs root): ", why);
    return;
  }
  TestCluster cluster("  stages: 2\n");
  INFO(cluster.logs());
  const std::string worker_port = std::to_string(cluster.worker_port());
  ChildProcess& coordinator = cluster.start_coordinator({}, "tcp://0.0.0.0:" + worker_port);
  const std::string reach = "tcp://" + net->root_address() + ":" + worker_port;
  cluster.start_worker("ns0", {"--coordinator", reach}, net->exec_prefix(0));
  cluster.start_worker("ns1", {"--coordinator", reach}, net->exec_prefix(1));
  cluster.wait_for_workers({"ns0", "ns1"});
  // Each worker is known at its own namespace's address.
  const std::string joined = log_messages(coordinator.log());
  CHECK(joined.find("worker ns0 joined: cpu, 2048 MiB, speed ") != std::string::npos);
  CHECK(joined.find(", at " + net->address(0) + "\n") != std::string::npos);
  CHECK(joined.find(", at " + net->address(1) + "\n") != std::string::npos);

  const std::filesystem::path input = cluster.file("stories.jsonl");
  write_story_input(input, 24);
  const SubmitRun run = cluster.submit(
      {"--input", input.string(), "--output", cluster.file("out.jsonl").string(), "--wait"},
      "submit.log");
  CHECK(run.exit_code == 0);
  check_matches_reference(input, cluster.file("out.jsonl"), cluster.file("out.errors.jsonl"));

  const std::string log = coordinator.log();
  const std::vector<LiveReplica> replicas = live_replicas(log);
  REQUIRE(replicas.size() == 1);
  REQUIRE(replicas[0].workers.size() == 2);
  const std::string second = replicas[0].workers[1];
  const std::string address = net->address(second == "ns0" ? 0 : 1);
  const std::string receiver =
      "replica 1 stage 2 on " + second + " receives activations at " + address + ":";
  const std::size_t at = log.find(receiver);
  REQUIRE_MESSAGE(at != std::string::npos, "no line: ", receiver);
  CHECK(log.substr(at, log.find('\n', at) - at).find(" over UCX") != std::string::npos);
}

}  // namespace
