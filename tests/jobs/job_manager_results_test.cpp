// JobManager results: finished requests reach the job's stream in completion order,
// fetch pages through it, the job is done only once its final chunk is in and every
// line is answered, and a refused request becomes an error line.
#include <doctest/doctest.h>

#include <mutex>
#include <string>
#include <vector>

#include "tests/jobs/job_manager_harness.h"

namespace conveyor {
namespace {

using testing::answer;
using testing::chunk_of;
using testing::completion_lines;
using testing::custom_ids;
using testing::JobManagerHarness;
using testing::parse_line;

TEST_CASE("results: fetched in completion order, by offset, done when all are answered") {
  JobManagerHarness h;
  REQUIRE(h.manager().submit(chunk_of("job", 0, false, completion_lines("a", 2))).outcome ==
          SubmitOutcome::kAccepted);
  std::vector<EngineRequest> requests = h.take(2);
  JobStatusReply status = h.manager().status("job");
  CHECK(status.found);
  CHECK(status.state == "receiving");
  CHECK(status.total == 2);
  CHECK(status.chunks == 1);
  CHECK_FALSE(status.final_received);

  // Every line of the first chunk answered, but the job is still receiving.
  h.manager().complete(answer(requests[1]));
  h.manager().complete(answer(requests[0]));
  FetchReply fetched = h.wait_for_records("job", 2);
  CHECK(custom_ids(fetched.records) == std::vector<std::string>{"a1", "a0"});
  CHECK(fetched.next_offset == 2);
  CHECK_FALSE(fetched.job_done);
  CHECK(h.manager().status("job").state == "receiving");

  REQUIRE(h.manager().submit(chunk_of("job", 1, true, completion_lines("b", 2))).outcome ==
          SubmitOutcome::kAccepted);
  const std::vector<EngineRequest> more = h.take(2);
  requests.insert(requests.end(), more.begin(), more.end());
  status = h.manager().status("job");
  CHECK(status.state == "running");
  CHECK(status.total == 4);
  CHECK(status.chunks == 2);
  CHECK(status.final_received);
  CHECK(status.completed == 2);

  h.manager().complete(answer(requests[3]));
  fetched = h.wait_for_records("job", 1, 2);
  CHECK(custom_ids(fetched.records) == std::vector<std::string>{"b1"});
  CHECK(fetched.next_offset == 3);
  CHECK_FALSE(fetched.job_done);

  h.manager().complete(answer(requests[2]));
  fetched = h.wait_for_records("job", 4);
  CHECK(custom_ids(fetched.records) == std::vector<std::string>{"a1", "a0", "b1", "b0"});
  CHECK(fetched.job_done);
  CHECK(fetched.total == 4);
  CHECK(fetched.completed == 4);
  CHECK(fetched.failed == 0);

  // Pages: a middle range, and a fetch that stops before the end is not done.
  fetched = h.manager().fetch("job", 1, 2);
  CHECK(custom_ids(fetched.records) == std::vector<std::string>{"a0", "b1"});
  CHECK(fetched.next_offset == 3);
  CHECK_FALSE(fetched.job_done);
  // Past the end: nothing, next_offset unchanged.
  fetched = h.manager().fetch("job", 9, 10);
  CHECK(fetched.found);
  CHECK(fetched.records.empty());
  CHECK(fetched.next_offset == 9);

  status = h.manager().status("job");
  CHECK(status.state == "finished");
  CHECK(status.completed == 4);
  CHECK(h.manager().counters().pending == 0);
  CHECK(h.manager().counters().finished == 4);

  // The output line is an OpenAI Batch output object.
  const auto line = parse_line(h.manager().fetch("job", 0, 1).records.at(0));
  CHECK(line["custom_id"] == "a1");
  CHECK(line["error"].is_null());
  CHECK(line["response"]["status_code"] == 200);
  CHECK(line["response"]["body"]["model"] == "test-model");
  CHECK(line["response"]["body"]["choices"][0]["text"] == "out");
  CHECK(line["response"]["body"]["choices"][0]["finish_reason"] == "length");
  CHECK(line["response"]["body"]["usage"]["prompt_tokens"] == 3);
  CHECK(line["response"]["body"]["usage"]["completion_tokens"] == 2);
}

TEST_CASE("results: a refused request becomes an error line") {
  JobManagerHarness h;
  REQUIRE(h.manager().submit(chunk_of("job", 0, true, completion_lines("a", 3))).outcome ==
          SubmitOutcome::kAccepted);
  const std::vector<EngineRequest> requests = h.take(3);
  h.manager().complete(answer(requests[0], Status(ErrorCode::kOutOfRange, "prompt too long")));
  h.manager().complete(answer(requests[1], Status(ErrorCode::kInvalidArgument, "bad top_p")));
  h.manager().complete(answer(requests[2], Status(ErrorCode::kInternal, "boom")));
  const FetchReply fetched = h.wait_for_records("job", 3);
  REQUIRE(fetched.records.size() == 3);
  const char* codes[] = {"context_length_exceeded", "invalid_request", "internal_error"};
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(fetched.records[i].error);
    const auto line = parse_line(fetched.records[i]);
    CHECK(line["custom_id"] == "a" + std::to_string(i));
    CHECK(line["response"].is_null());
    CHECK(line["error"]["code"] == codes[i]);
  }
  CHECK(parse_line(fetched.records[0])["error"]["message"].get<std::string>().find(
            "prompt too long") != std::string::npos);
  CHECK(fetched.job_done);
  CHECK(fetched.failed == 3);
  CHECK(fetched.completed == 0);
  CHECK(h.manager().status("job").state == "finished");
}

TEST_CASE("results: unknown jobs and keys") {
  JobManagerHarness h;
  CHECK_FALSE(h.manager().status("nobody").found);
  CHECK_FALSE(h.manager().fetch("nobody", 0, 10).found);

  REQUIRE(h.manager().submit(chunk_of("job", 0, true, completion_lines("a", 1))).outcome ==
          SubmitOutcome::kAccepted);
  EngineRequest request = h.take(1)[0];
  // A result for a key never handed out, then the same result twice: one line.
  EngineRequest stranger = request;
  stranger.key = request.key + 1000;
  h.manager().complete(answer(stranger));
  h.manager().complete(answer(request));
  h.manager().complete(answer(request));
  const FetchReply fetched = h.wait_for_records("job", 1);
  CHECK(fetched.job_done);
  h.close();  // drains the completions: nothing more can arrive
  h.open();
  CHECK(h.manager().fetch("job", 0, 10).records.size() == 1);
  CHECK(h.manager().counters().pending == 0);
}

TEST_CASE("results: on_new_results names the job whose stream grew") {
  testing::TempDir dir;
  Channel<EngineRequest> requests;
  JobManagerOptions options;
  options.dir = dir.path();
  auto opened =
      JobManager::open(options, RequestPreparer(IntakeOptions{}, nullptr, std::nullopt), requests);
  REQUIRE(opened.ok());
  JobManager& manager = **opened;
  std::mutex mutex;
  std::vector<std::string> grown;
  manager.start([&](const std::string& job_id) {
    std::lock_guard lock(mutex);
    grown.push_back(job_id);
  });
  REQUIRE(manager.submit(chunk_of("j1", 0, true, completion_lines("a", 1))).outcome ==
          SubmitOutcome::kAccepted);
  auto request = requests.receive_for(testing::kWaitLimit);
  REQUIRE(request.has_value());
  manager.complete(answer(*request));
  manager.stop();  // writes what has finished
  CHECK(manager.fetch("j1", 0, 10).records.size() == 1);
  std::lock_guard lock(mutex);
  CHECK(grown == std::vector<std::string>{"j1", "j1"});  // the submit, then the result
}

}  // namespace
}  // namespace conveyor
