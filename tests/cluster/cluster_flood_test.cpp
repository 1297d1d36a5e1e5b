// A flood of producers against a small queue limit: the coordinator takes chunks
// until `cluster.queue_limit` requests wait, answers BUSY beyond it (a producer whose
// patience runs out is told so), and once workers drain the queue every producer's
// every line is answered exactly once.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "coordinator/producer/producer_client.h"
#include "tests/cluster/test_cluster.h"

namespace {

using namespace conveyor::testing;

constexpr int kQueueLimit = 8;
constexpr int kChunkLines = 4;
constexpr int kProducers = 4;
constexpr int kLinesEach = 12;

// Requests the coordinator holds unfinished, over `job_ids` (jobs it does not know
// yet hold none).
std::int64_t pending(conveyor::ProducerClient& client, const std::vector<std::string>& job_ids) {
  std::int64_t sum = 0;
  for (const std::string& id : job_ids) {
    conveyor::Expected<conveyor::JobStatusReply> s = client.status(id);
    REQUIRE_MESSAGE(s.ok(), s.status().to_string());
    if (s->found) sum += s->total - s->completed - s->failed;
  }
  return sum;
}

TEST_CASE("cluster: producers flooding a small queue get BUSY and lose nothing") {
  if (skip_without_model()) return;
  TestCluster cluster("  stages: 1\n  queue_limit: " + std::to_string(kQueueLimit) + "\n");
  INFO(cluster.logs());
  cluster.start_coordinator();

  // No workers yet: nothing finishes, so the queue fills and stays full.
  std::vector<std::unique_ptr<ChildProcess>> producers;
  std::vector<std::string> job_ids;
  for (int p = 0; p < kProducers; ++p) {
    const std::string name = "producer-" + std::to_string(p);
    const std::filesystem::path input = cluster.file(name + ".jsonl");
    write_story_input(input, kLinesEach, std::to_string(p) + "-");
    producers.push_back(cluster.start_submit(
        {"--input", input.string(), "--output", cluster.file(name + "-out.jsonl").string(),
         "--chunk-lines", std::to_string(kChunkLines), "--wait"},
        name + ".log"));
    job_ids.push_back(std::string());
  }
  for (int p = 0; p < kProducers; ++p) {
    ChildProcess& producer = *producers[static_cast<std::size_t>(p)];
    REQUIRE(
        wait_until([&] { return producer.log().find('\n') != std::string::npos; }, kStartTimeout));
    const std::string log = producer.log();
    job_ids[static_cast<std::size_t>(p)] = log.substr(0, log.find('\n'));
  }

  zmq::context_t context;
  conveyor::ProducerClientOptions options;
  options.endpoint = cluster.producer_endpoint();
  conveyor::ProducerClient client(context, options);
  REQUIRE(wait_until([&] { return pending(client, job_ids) == kQueueLimit; }, kStartTimeout));

  // A fifth producer, patient for two seconds only, is refused with BUSY.
  const std::filesystem::path extra = cluster.file("extra.jsonl");
  write_story_input(extra, kChunkLines, "extra-");
  const SubmitRun refused = cluster.submit(
      {"--input", extra.string(), "--chunk-lines", std::to_string(kChunkLines), "--timeout", "2"},
      "extra.log");
  CHECK(refused.exit_code == 1);
  CHECK(refused.log.find("stayed busy") != std::string::npos);
  CHECK(refused.log.find("queue is full (8 of 8 requests pending)") != std::string::npos);
  CHECK(pending(client, job_ids) == kQueueLimit);  // the flood held no more than the limit

  // Workers drain the queue; the producers' chunks go in as room appears.
  cluster.start_worker("w1");
  cluster.start_worker("w2");
  std::int64_t most = 0;
  bool all_done = false;
  REQUIRE(wait_until(
      [&] {
        most = std::max(most, pending(client, job_ids));
        all_done = std::all_of(producers.begin(), producers.end(),
                               [](const auto& producer) { return !producer->running(); });
        return all_done;
      },
      kJobTimeout));
  // Status replies of different jobs are read one after another, so a sum may count a
  // chunk accepted after another job's reply: a chunk's worth of slack.
  CHECK(most <= kQueueLimit + kChunkLines);

  for (int p = 0; p < kProducers; ++p) {
    const std::string name = "producer-" + std::to_string(p);
    const SubmitRun run =
        TestCluster::finish_submit(*producers[static_cast<std::size_t>(p)], kStartTimeout);
    CHECK_MESSAGE(run.exit_code == 0, run.log);
    const std::map<std::string, int> counts = custom_id_counts(cluster.file(name + "-out.jsonl"));
    CHECK(counts.size() == kLinesEach);
    for (const auto& [id, count] : counts) {
      CHECK_MESSAGE(count == 1, id, " appears ", count, " times");
      CHECK(id.rfind("story-" + std::to_string(p) + "-", 0) == 0);
    }
  }
}

}  // namespace
