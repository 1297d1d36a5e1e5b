// JobManager cancel and release: a cancelled job is done, its queued requests see the
// flag and late results are dropped; a released job is forgotten with its result file,
// its late results change nothing, and its id may start a fresh job (also when a crash
// left the old result file behind).
#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

#include "coordinator/journal/job_journal.h"
#include "tests/jobs/job_manager_harness.h"

namespace conveyor {
namespace {

using testing::answer;
using testing::chunk_of;
using testing::completion_line;
using testing::completion_lines;
using testing::custom_ids;
using testing::JobManagerHarness;
using testing::parse_line;

TEST_CASE("cancel: the job is done, queued requests are flagged, late results dropped") {
  JobManagerHarness h;
  REQUIRE(h.manager().submit(chunk_of("job", 0, true, completion_lines("r", 3))).outcome ==
          SubmitOutcome::kAccepted);
  const std::vector<EngineRequest> requests = h.take(3);
  h.manager().complete(answer(requests[0]));
  h.wait_for_records("job", 1);

  REQUIRE(h.manager().cancel("job").ok());
  for (const EngineRequest& r : requests)
    CHECK(r.cancelled->load());
  JobStatusReply status = h.manager().status("job");
  CHECK(status.state == "cancelled");
  CHECK(status.completed == 1);
  FetchReply fetched = h.manager().fetch("job", 0, 10);
  CHECK(fetched.records.size() == 1);
  CHECK(fetched.job_done);

  // Cancelling again is no error; a later chunk is refused.
  CHECK(h.manager().cancel("job").ok());
  CHECK(h.manager().submit(chunk_of("job", 1, true, completion_lines("s", 1))).outcome ==
        SubmitOutcome::kRejected);

  h.manager().complete(answer(requests[1]));
  h.manager().complete(answer(requests[2], Status(ErrorCode::kCancelled, "cancelled")));
  h.wait_until_idle();
  fetched = h.manager().fetch("job", 0, 10);
  CHECK(custom_ids(fetched.records) == std::vector<std::string>{"r0"});
  CHECK(fetched.job_done);
  CHECK(h.manager().status("job").completed == 1);
  CHECK(h.manager().status("job").failed == 0);
  CHECK(h.manager().counters().finished == 1);

  h.close();
  auto journal = JobJournal::open(h.dir());
  REQUIRE(journal.ok());
  CHECK((*journal)->state().jobs.at("job").cancelled);
}

TEST_CASE("cancel: an unknown job is not found; a finished job stays finished") {
  JobManagerHarness h;
  CHECK(h.manager().cancel("nobody").code() == ErrorCode::kNotFound);

  REQUIRE(h.manager().submit(chunk_of("job", 0, true, completion_lines("r", 1))).outcome ==
          SubmitOutcome::kAccepted);
  h.manager().complete(answer(h.take(1)[0]));
  h.wait_for_records("job", 1);
  CHECK(h.manager().cancel("job").ok());
  CHECK(h.manager().status("job").state == "finished");
}

TEST_CASE("release: the job and its result file are forgotten; its id may start afresh") {
  JobManagerHarness h;
  REQUIRE(h.manager().submit(chunk_of("job", 0, true, completion_lines("r", 2))).outcome ==
          SubmitOutcome::kAccepted);
  const std::vector<EngineRequest> old = h.take(2);
  h.manager().complete(answer(old[0], {}, "old"));
  h.wait_for_records("job", 1);
  REQUIRE(std::filesystem::exists(h.result_file("job")));

  REQUIRE(h.manager().release("job").ok());
  CHECK_FALSE(h.manager().status("job").found);
  CHECK_FALSE(h.manager().fetch("job", 0, 10).found);
  CHECK_FALSE(std::filesystem::exists(h.result_file("job")));
  CHECK(old[1].cancelled->load());  // still queued: not to be run
  CHECK(h.manager().counters().pending == 0);
  CHECK(h.manager().counters().jobs == 0);
  CHECK(h.manager().release("job").code() == ErrorCode::kNotFound);
  CHECK(h.manager().cancel("job").code() == ErrorCode::kNotFound);

  // The same id again, with a custom_id the old job also had.
  REQUIRE(h.manager().submit(chunk_of("job", 0, true, {completion_line("r1")})).outcome ==
          SubmitOutcome::kAccepted);
  const EngineRequest fresh = h.take(1)[0];
  CHECK_FALSE(fresh.cancelled->load());
  CHECK(fresh.key != old[1].key);
  // The old job's in-flight request finishes first: it must change nothing.
  h.manager().complete(answer(old[1], {}, "old"));
  h.manager().complete(answer(fresh, {}, "fresh"));
  const FetchReply fetched = h.wait_for_records("job", 1);
  REQUIRE(fetched.records.size() == 1);
  CHECK(parse_line(fetched.records[0])["custom_id"] == "r1");
  CHECK(parse_line(fetched.records[0])["response"]["body"]["choices"][0]["text"] == "fresh");
  CHECK(fetched.job_done);
  CHECK(fetched.total == 1);
  CHECK(fetched.completed == 1);
  const JobManagerCounters counters = h.manager().counters();
  CHECK(counters.pending == 0);
  CHECK(counters.jobs == 1);

  // The journal knows only the fresh job.
  h.close();
  auto journal = JobJournal::open(h.dir());
  REQUIRE(journal.ok());
  const JournalJob& job = (*journal)->state().jobs.at("job");
  CHECK(job.lines == std::vector<std::string>{completion_line("r1")});
  CHECK(job.done == std::set<std::string>{"r1"});
}

TEST_CASE("release: a late result of a released job leaves the counters alone") {
  JobManagerHarness h;
  REQUIRE(h.manager().submit(chunk_of("gone", 0, true, completion_lines("r", 2))).outcome ==
          SubmitOutcome::kAccepted);
  REQUIRE(h.manager().submit(chunk_of("kept", 0, true, completion_lines("k", 1))).outcome ==
          SubmitOutcome::kAccepted);
  const std::vector<EngineRequest> requests = h.take(3);
  CHECK(h.manager().counters().pending == 3);
  REQUIRE(h.manager().release("gone").ok());
  CHECK(h.manager().counters().pending == 1);

  h.manager().complete(answer(requests[0]));
  h.manager().complete(answer(requests[1]));
  h.manager().complete(answer(requests[2]));
  h.wait_for_records("kept", 1);  // after the late ones: the completions are in order
  CHECK(h.manager().counters().pending == 0);
  CHECK(h.manager().counters().finished == 1);
  CHECK_FALSE(std::filesystem::exists(h.result_file("gone")));

  // A restart does not bring the released job back.
  h.close();
  h.open();
  CHECK_FALSE(h.manager().status("gone").found);
  CHECK(h.manager().counters().pending == 0);
  CHECK(h.requests().size() == 0);
}

TEST_CASE("release: a result file left by a crash during release is not the new job's") {
  JobManagerHarness h;
  REQUIRE(h.manager().submit(chunk_of("job", 0, true, completion_lines("r", 2))).outcome ==
          SubmitOutcome::kAccepted);
  for (const EngineRequest& r : h.take(2))
    h.manager().complete(answer(r, {}, "old"));
  h.wait_for_records("job", 2);
  h.close();
  // The release is journaled, then the coordinator dies before removing the file.
  {
    auto journal = JobJournal::open(h.dir());
    REQUIRE(journal.ok());
    REQUIRE((*journal)->release("job").ok());
  }
  REQUIRE(std::filesystem::exists(h.result_file("job")));

  h.open();
  CHECK_FALSE(h.manager().status("job").found);
  REQUIRE(h.manager().submit(chunk_of("job", 0, true, completion_lines("r", 2))).outcome ==
          SubmitOutcome::kAccepted);
  const std::vector<EngineRequest> fresh = h.take(2);
  CHECK(h.manager().fetch("job", 0, 10).records.empty());
  CHECK(h.manager().status("job").completed == 0);
  for (const EngineRequest& r : fresh)
    h.manager().complete(answer(r, {}, "new"));
  const FetchReply fetched = h.wait_for_records("job", 2);
  REQUIRE(fetched.records.size() == 2);
  for (const ResultRecord& r : fetched.records)
    CHECK(parse_line(r)["response"]["body"]["choices"][0]["text"] == "new");
}

}  // namespace
}  // namespace conveyor
