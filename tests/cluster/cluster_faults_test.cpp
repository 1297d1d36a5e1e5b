// A cluster loses nothing and repeats nothing when its processes die: a worker
// killed mid-job (its replica is replanned with the survivors), the coordinator killed
// mid-job and restarted on its journal, submission ACKs that never arrive.
#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/cluster/test_cluster.h"

namespace {

using namespace conveyor::testing;

constexpr int kStories = 48;

std::filesystem::path result_stream(const TestCluster& cluster, const std::string& job_id) {
  return cluster.journal() / "results" / (job_id + ".jsonl");
}

// Waits until the job's result stream holds some records; returns how many.
std::size_t wait_for_some_results(const TestCluster& cluster, const std::string& job_id) {
  std::size_t records = 0;
  const bool some = wait_until(
      [&] {
        records = line_count(result_stream(cluster, job_id));
        return records > 0;
      },
      kJobTimeout);
  REQUIRE_MESSAGE(some, "no results for ", job_id);
  return records;
}

// Waits until the first line of a submit's log (the job id) is complete.
std::string wait_for_job_id(ChildProcess& submit) {
  std::string job_id;
  REQUIRE(wait_until(
      [&] {
        const std::string log = submit.log();
        const std::size_t end = log.find('\n');
        if (end == std::string::npos) return false;
        job_id = log.substr(0, end);
        return true;
      },
      kStartTimeout));
  return job_id;
}

// `conveyor status` of a job, as JSON.
nlohmann::json job_status(TestCluster& cluster, const std::string& job_id) {
  ChildProcess status({conveyor_binary(), "status", "--coordinator", cluster.producer_endpoint(),
                       "--job-id", job_id},
                      cluster.file("status.log"));
  const std::optional<int> code = status.wait_for_exit(kStartTimeout);
  const std::string out = status.log();
  REQUIRE_MESSAGE(code == 0, "conveyor status failed:\n", out);
  return nlohmann::json::parse(out.substr(0, out.find('\n')));
}

TEST_CASE("cluster: kill -9 of a worker mid-job: replanned with the survivors, nothing lost") {
  if (skip_without_model()) return;
  TestCluster cluster("  stages: 2\n");
  INFO(cluster.logs());
  ChildProcess& coordinator = cluster.start_coordinator();
  for (const char* name : {"w1", "w2", "w3"})
    cluster.start_worker(name);
  const std::filesystem::path input = cluster.file("stories.jsonl");
  write_story_input(input, kStories);
  const std::filesystem::path output = cluster.file("out.jsonl");

  auto submit = cluster.start_submit(
      {"--input", input.string(), "--output", output.string(), "--wait"}, "submit.log");
  const std::string job_id = wait_for_job_id(*submit);
  wait_for_some_results(cluster, job_id);

  // One replica of two workers is live, the third idle; a worker of the replica dies.
  const std::vector<LiveReplica> before = live_replicas(coordinator.log());
  REQUIRE(before.size() == 1);
  REQUIRE(before[0].workers.size() == 2);
  const std::string victim = before[0].workers[0];
  const std::string survivor = before[0].workers[1];
  std::string idle;
  for (const char* name : {"w1", "w2", "w3"})
    if (name != victim && name != survivor) idle = name;
  REQUIRE_MESSAGE(line_count(result_stream(cluster, job_id)) < kStories,
                  "the job finished before the worker could be killed");
  cluster.worker(victim).kill(SIGKILL);

  const SubmitRun run = TestCluster::finish_submit(*submit, kJobTimeout);
  CHECK(run.exit_code == 0);
  const std::map<std::string, int> counts = custom_id_counts(output);
  CHECK(counts.size() == kStories);
  for (const auto& [id, count] : counts)
    CHECK_MESSAGE(count == 1, id, " appears ", count, " times");
  check_matches_reference(input, output, cluster.file("out.errors.jsonl"));

  // The replica was dissolved and a new one formed of the survivor and the idle worker.
  const std::string log = coordinator.log();
  CHECK(log.find("replica " + std::to_string(before[0].epoch) + " dissolved") != std::string::npos);
  const std::vector<LiveReplica> after = live_replicas(log);
  REQUIRE(after.size() == 2);
  CHECK(std::set<std::string>(after[1].workers.begin(), after[1].workers.end()) ==
        std::set<std::string>{survivor, idle});

  coordinator.kill(SIGTERM);
  REQUIRE(coordinator.wait_for_exit(kStartTimeout) == 0);
  // Requests the lost replica held went back to the queue.
  CHECK(coordinator.log().find(", 0 requests requeued") == std::string::npos);
}

TEST_CASE("cluster: kill -9 of a worker while swapped K/V are on disk: requeued, file cleaned") {
  if (skip_without_model()) return;
  TestCluster cluster("");
  const std::filesystem::path disk = cluster.file("nvme");
  std::filesystem::create_directories(disk);
  // A K/V cache far too small for the batch: preempted sequences swap to the disk tier
  // (no host tier), so blocks are on disk whenever the worker dies.
  cluster.write_config(
      "  stages: 1\nkv:\n  blocks: 12\n  preemption: swap\n"
      "  host_budget: 0\n  disk_dir: " +
      disk.string() + "\n  disk_budget: 256MiB\nscheduler:\n  max_sequences: 16\n");
  INFO(cluster.logs());
  ChildProcess& coordinator = cluster.start_coordinator();
  cluster.start_worker("w1");
  const std::filesystem::path input = cluster.file("stories.jsonl");
  write_story_input(input, kStories);
  const std::filesystem::path output = cluster.file("out.jsonl");
  auto submit = cluster.start_submit(
      {"--input", input.string(), "--output", output.string(), "--wait"}, "submit.log");
  const std::string job_id = wait_for_job_id(*submit);
  wait_for_some_results(cluster, job_id);
  REQUIRE_MESSAGE(line_count(result_stream(cluster, job_id)) < kStories,
                  "the job finished before the worker could be killed");
  const auto files = [&] {
    return std::distance(std::filesystem::directory_iterator(disk),
                         std::filesystem::directory_iterator());
  };
  REQUIRE(files() == 1);  // the disk tier's file, blocks in it
  cluster.worker("w1").kill(SIGKILL);
  REQUIRE(cluster.worker("w1").wait_for_exit(kStartTimeout).has_value());
  CHECK(files() == 1);  // left behind by the dead worker

  // A new worker on the same disk removes the stale file before it creates its own,
  // and the requests the dead one held run again.
  cluster.start_worker("w2");
  const SubmitRun run = TestCluster::finish_submit(*submit, kJobTimeout);
  CHECK(run.exit_code == 0);
  const std::map<std::string, int> counts = custom_id_counts(output);
  CHECK(counts.size() == kStories);
  for (const auto& [id, count] : counts)
    CHECK_MESSAGE(count == 1, id, " appears ", count, " times");
  check_matches_reference(input, output, cluster.file("out.errors.jsonl"));
  CHECK(files() == 1);
  // The first replica, lost with its worker, had swapped to disk.
  const std::string log = coordinator.log();
  const std::size_t ran = log.find(" steps, ");
  REQUIRE(ran != std::string::npos);
  const std::size_t host = log.find(" swapped to host, ", ran);
  REQUIRE(host != std::string::npos);
  CHECK(std::stoi(log.substr(host + std::string(" swapped to host, ").size())) > 0);
}

TEST_CASE("cluster: kill -9 of the coordinator mid-job: the restarted one finishes it once") {
  if (skip_without_model()) return;
  TestCluster cluster("  stages: 2\n");
  INFO(cluster.logs());
  cluster.start_coordinator();
  for (const char* name : {"w1", "w2", "w3"})
    cluster.start_worker(name);
  const std::filesystem::path input = cluster.file("stories.jsonl");
  write_story_input(input, kStories);
  const std::filesystem::path output = cluster.file("out.jsonl");

  // Upload only: once submit has exited, every request is in the journal.
  const SubmitRun upload = cluster.submit({"--input", input.string()}, "upload.log");
  REQUIRE(upload.exit_code == 0);
  wait_for_some_results(cluster, upload.job_id);
  REQUIRE_MESSAGE(line_count(result_stream(cluster, upload.job_id)) < kStories,
                  "the job finished before the coordinator could be killed");
  cluster.coordinator().kill(SIGKILL);
  REQUIRE(cluster.coordinator().wait_for_exit(kStartTimeout).has_value());

  ChildProcess& restarted = cluster.start_coordinator();
  REQUIRE(restarted.wait_for_log("request(s) to finish", kStartTimeout));
  nlohmann::json status;
  REQUIRE(wait_until(
      [&] {
        status = job_status(cluster, upload.job_id);
        return status.at("status") == "finished";
      },
      kJobTimeout));
  CHECK(status.at("request_counts").at("total") == kStories);
  CHECK(status.at("request_counts").at("completed") == kStories);

  // The result stream holds each request once, restart or not.
  std::map<std::string, int> streamed;
  for (const std::string& id : result_stream_custom_ids(result_stream(cluster, upload.job_id)))
    ++streamed[id];
  CHECK(streamed.size() == kStories);
  for (const auto& [id, count] : streamed)
    CHECK_MESSAGE(count == 1, id, " is in the result stream ", count, " times");

  const SubmitRun run = cluster.submit(
      {"--input", input.string(), "--output", output.string(), "--wait"}, "submit.log");
  CHECK(run.job_id == upload.job_id);
  CHECK(run.exit_code == 0);
  const std::map<std::string, int> counts = custom_id_counts(output);
  CHECK(counts.size() == kStories);
  for (const auto& [id, count] : counts)
    CHECK_MESSAGE(count == 1, id, " appears ", count, " times");
  check_matches_reference(input, output, cluster.file("out.errors.jsonl"));
}

TEST_CASE("cluster: dropped submission ACKs: every chunk accepted once, every result once") {
  if (skip_without_model()) return;
  TestCluster cluster("  stages: 1\n");
  INFO(cluster.logs());
  cluster.start_coordinator({"--fault-drop-acks", "2"});
  cluster.start_worker("w1");
  const std::filesystem::path input = cluster.file("stories.jsonl");
  constexpr int kLines = 12;
  write_story_input(input, kLines);

  // 4 chunks of 3 lines. The first two replies to SUBMIT never come: chunk 0 is
  // accepted, then sent again (its DUPLICATE withheld too) and sent a third time, which
  // is answered DUPLICATE.
  const SubmitRun upload =
      cluster.submit({"--input", input.string(), "--chunk-lines", "3"}, "upload.log");
  REQUIRE(upload.exit_code == 0);
  CHECK(upload.log.find("4 chunks, 12 lines sent (1 chunks already there)") != std::string::npos);

  const nlohmann::json status = job_status(cluster, upload.job_id);
  CHECK(status.at("chunks") == 4);
  CHECK(status.at("final_chunk_received") == true);
  CHECK(status.at("request_counts").at("total") == kLines);

  const std::filesystem::path output = cluster.file("out.jsonl");
  const SubmitRun run = cluster.submit(
      {"--input", input.string(), "--output", output.string(), "--chunk-lines", "3", "--wait"},
      "submit.log");
  CHECK(run.exit_code == 0);
  const std::map<std::string, int> counts = custom_id_counts(output);
  CHECK(counts.size() == kLines);
  for (const auto& [id, count] : counts)
    CHECK_MESSAGE(count == 1, id, " appears ", count, " times");
  CHECK(line_count(cluster.file("out.errors.jsonl")) == 0);
}

}  // namespace
