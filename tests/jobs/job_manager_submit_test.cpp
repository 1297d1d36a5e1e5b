// JobManager::submit: an accepted chunk is journaled before the reply and its requests
// are queued once; bad lines are answered at once; duplicates, late and invalid chunks
// are told apart; a full queue answers BUSY without storing anything.
#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

#include "coordinator/journal/job_journal.h"
#include "tests/jobs/job_manager_harness.h"

namespace conveyor {
namespace {

using testing::chunk_of;
using testing::completion_line;
using testing::completion_lines;
using testing::custom_ids;
using testing::JobManagerHarness;
using testing::parse_line;
using testing::TempDir;

TEST_CASE("submit: an accepted chunk is journaled before the reply and its requests queued") {
  JobManagerHarness h;
  const std::vector<std::string> lines = {completion_line("a"), completion_line("b"),
                                          completion_line("c")};
  const SubmitReply reply = h.manager().submit(chunk_of("job-1", 0, false, lines));
  REQUIRE(reply.outcome == SubmitOutcome::kAccepted);
  CHECK(reply.message.empty());

  // A copy of the journal taken now, with the manager still running, holds the chunk.
  TempDir copy;
  std::filesystem::copy_file(h.dir() / JobJournal::kFileName, copy.file(JobJournal::kFileName));
  auto journal = JobJournal::open(copy.path());
  REQUIRE_MESSAGE(journal.ok(), journal.status().to_string());
  const auto& jobs = (*journal)->state().jobs;
  REQUIRE(jobs.count("job-1") == 1);
  CHECK(jobs.at("job-1").lines == lines);
  CHECK(jobs.at("job-1").chunks == std::set<std::uint32_t>{0});
  CHECK_FALSE(jobs.at("job-1").final_received);
  CHECK(jobs.at("job-1").producer == "00ff");

  const std::vector<EngineRequest> requests = h.take(3);
  std::set<std::uint64_t> keys;
  std::vector<std::string> ids;
  for (const EngineRequest& r : requests) {
    keys.insert(r.key);
    REQUIRE(r.origin != nullptr);
    ids.push_back(r.origin->custom_id);
    CHECK(r.prompt == std::vector<std::int32_t>{1, 2, 3});
    REQUIRE(r.cancelled != nullptr);
    CHECK_FALSE(r.cancelled->load());
  }
  CHECK(keys.size() == 3);
  CHECK(ids == std::vector<std::string>{"a", "b", "c"});
  CHECK(h.requests().size() == 0);

  const JobManagerCounters counters = h.manager().counters();
  CHECK(counters.jobs == 1);
  CHECK(counters.pending == 3);
  CHECK(counters.accepted_chunks == 1);

  // The manager stopped cleanly: the journal says the same.
  h.close();
  auto reopened = JobJournal::open(h.dir());
  REQUIRE(reopened.ok());
  CHECK((*reopened)->state().jobs.at("job-1").lines == lines);
}

TEST_CASE("submit: bad lines become error records at once, good lines are queued") {
  JobManagerHarness h;
  const std::vector<std::string> lines = {
      completion_line("a"),
      "{not json",
      "",  // blank: no record, but it keeps its line number
      completion_line("a"),
      completion_line("b"),
  };
  REQUIRE(h.manager().submit(chunk_of("job", 0, true, lines)).outcome == SubmitOutcome::kAccepted);

  // No waiting: the error lines are written by submit itself.
  const FetchReply fetched = h.manager().fetch("job", 0, 100);
  REQUIRE(fetched.found);
  REQUIRE(fetched.records.size() == 2);
  CHECK(custom_ids(fetched.records) == std::vector<std::string>{"line-2", "a#line-4"});
  for (const ResultRecord& r : fetched.records) {
    CHECK(r.error);
    const auto json = parse_line(r);
    CHECK(json["response"].is_null());
    CHECK(json["error"]["code"].is_string());
  }
  CHECK(parse_line(fetched.records[1])["error"]["code"] == "duplicate_custom_id");
  CHECK(fetched.total == 4);
  CHECK(fetched.failed == 2);
  CHECK(fetched.completed == 0);
  CHECK_FALSE(fetched.job_done);

  const std::vector<EngineRequest> requests = h.take(2);
  CHECK(requests[0].origin->custom_id == "a");
  CHECK(requests[1].origin->custom_id == "b");
  CHECK(h.requests().size() == 0);
  CHECK(h.manager().counters().pending == 2);
  CHECK(h.manager().counters().finished == 2);
}

TEST_CASE("submit: a repeated custom_id in a later chunk is an error line") {
  JobManagerHarness h;
  REQUIRE(h.manager().submit(chunk_of("job", 0, false, {completion_line("a")})).outcome ==
          SubmitOutcome::kAccepted);
  REQUIRE(h.manager().submit(chunk_of("job", 1, true, {completion_line("a")})).outcome ==
          SubmitOutcome::kAccepted);
  CHECK(custom_ids(h.manager().fetch("job", 0, 10).records) ==
        std::vector<std::string>{"a#line-2"});
  CHECK(h.take(1)[0].origin->custom_id == "a");
  CHECK(h.requests().size() == 0);
}

TEST_CASE("submit: duplicate, late and invalid chunks") {
  JobManagerHarness h;
  REQUIRE(h.manager().submit(chunk_of("job", 0, false, completion_lines("x", 2))).outcome ==
          SubmitOutcome::kAccepted);
  h.take(2);

  SUBCASE("a repeated chunk is a duplicate and queues nothing") {
    const SubmitReply reply =
        h.manager().submit(chunk_of("job", 0, false, completion_lines("x", 2)));
    CHECK(reply.outcome == SubmitOutcome::kDuplicate);
    CHECK(h.requests().size() == 0);
    CHECK(h.manager().counters().duplicate_chunks == 1);
    CHECK(h.manager().counters().pending == 2);
    CHECK(h.manager().status("job").total == 2);
    CHECK(h.manager().status("job").chunks == 1);
  }
  SUBCASE("a chunk after the final one is rejected") {
    REQUIRE(h.manager().submit(chunk_of("job", 1, true, completion_lines("y", 1))).outcome ==
            SubmitOutcome::kAccepted);
    h.take(1);
    const SubmitReply late =
        h.manager().submit(chunk_of("job", 2, false, completion_lines("z", 1)));
    CHECK(late.outcome == SubmitOutcome::kRejected);
    CHECK_FALSE(late.message.empty());
    CHECK(h.requests().size() == 0);
    CHECK(h.manager().status("job").total == 3);
    // The final chunk itself, sent again, is still a duplicate, not a rejection.
    CHECK(h.manager().submit(chunk_of("job", 1, true, completion_lines("y", 1))).outcome ==
          SubmitOutcome::kDuplicate);
  }
  SUBCASE("an invalid job id is rejected and stores nothing") {
    for (const std::string& id :
         std::vector<std::string>{"", "a/b", "../x", std::string(200, 'j')}) {
      const SubmitReply reply = h.manager().submit(chunk_of(id, 0, true, completion_lines("x", 1)));
      CHECK(reply.outcome == SubmitOutcome::kRejected);
      CHECK_FALSE(reply.message.empty());
    }
    CHECK(h.requests().size() == 0);
    CHECK(h.manager().counters().jobs == 1);
  }
}

TEST_CASE("submit: a full queue answers BUSY and stores nothing") {
  JobManagerHarness h(/*queue_limit=*/4);
  REQUIRE(h.manager().submit(chunk_of("job", 0, false, completion_lines("a", 3))).outcome ==
          SubmitOutcome::kAccepted);
  const std::vector<EngineRequest> first = h.take(3);

  const SubmitChunk second = chunk_of("job", 1, true, completion_lines("b", 3));
  const SubmitReply busy = h.manager().submit(second);
  CHECK(busy.outcome == SubmitOutcome::kBusy);
  CHECK_FALSE(busy.message.empty());
  CHECK(busy.retry_after_ms > 0);
  CHECK(h.requests().size() == 0);
  CHECK(h.manager().counters().busy == 1);
  CHECK(h.manager().status("job").chunks == 1);
  CHECK_FALSE(h.manager().status("job").final_received);
  // Another job is held back the same way.
  CHECK(h.manager().submit(chunk_of("other", 0, true, completion_lines("c", 2))).outcome ==
        SubmitOutcome::kBusy);
  CHECK(h.manager().status("other").found == false);

  for (const EngineRequest& r : first)
    h.manager().complete(testing::answer(r));
  h.wait_until_idle();

  // Sent again, the chunk is accepted: BUSY stored nothing, so it is no duplicate.
  CHECK(h.manager().submit(second).outcome == SubmitOutcome::kAccepted);
  std::vector<std::string> ids;
  for (const EngineRequest& r : h.take(3))
    ids.push_back(r.origin->custom_id);
  CHECK(ids == std::vector<std::string>{"b0", "b1", "b2"});
  CHECK(h.requests().size() == 0);
  CHECK(h.manager().counters().pending == 3);
  CHECK(h.manager().status("job").final_received);
}

TEST_CASE("submit: with nothing pending, a chunk larger than the queue limit is accepted") {
  JobManagerHarness h(/*queue_limit=*/4);
  const SubmitReply reply = h.manager().submit(chunk_of("big", 0, true, completion_lines("a", 6)));
  CHECK(reply.outcome == SubmitOutcome::kAccepted);
  h.take(6);
  CHECK(h.manager().counters().pending == 6);
  CHECK(h.manager().counters().busy == 0);
}

}  // namespace
}  // namespace conveyor
