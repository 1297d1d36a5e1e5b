// JobManager restart: a manager opened on the journal of one that stopped queues
// exactly the requests without a line in the result stream, keeps the lines it has,
// repairs a cut last line (and runs that request again); leases are journaled.
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "coordinator/journal/job_journal.h"
#include "tests/jobs/job_manager_harness.h"

namespace conveyor {
namespace {

using testing::answer;
using testing::chunk_of;
using testing::completion_lines;
using testing::custom_ids;
using testing::JobManagerHarness;

std::set<std::string> ids_of(const std::vector<EngineRequest>& requests) {
  std::set<std::string> ids;
  for (const EngineRequest& r : requests)
    ids.insert(r.origin->custom_id);
  return ids;
}

std::map<std::string, int> count_ids(const std::vector<ResultRecord>& records) {
  std::map<std::string, int> counts;
  for (const std::string& id : custom_ids(records))
    ++counts[id];
  return counts;
}

TEST_CASE("restart: exactly the unfinished requests are queued again") {
  JobManagerHarness h;
  std::vector<std::string> lines = completion_lines("r", 6);
  lines.push_back("{broken");  // line 7: an error line, written once
  REQUIRE(h.manager().submit(chunk_of("job", 0, true, lines)).outcome == SubmitOutcome::kAccepted);
  const std::vector<EngineRequest> first = h.take(6);
  h.manager().complete(answer(first[4]));
  h.manager().complete(answer(first[1]));
  const FetchReply before = h.wait_for_records("job", 3);
  CHECK(custom_ids(before.records) == std::vector<std::string>{"line-7", "r4", "r1"});
  h.close();

  h.open();
  const std::vector<EngineRequest> again = h.take(4);
  CHECK(h.requests().size() == 0);
  CHECK(ids_of(again) == std::set<std::string>{"r0", "r2", "r3", "r5"});
  std::set<std::uint64_t> keys;
  for (const EngineRequest& r : again)
    keys.insert(r.key);
  CHECK(keys.size() == 4);
  CHECK(h.manager().counters().resumed == 4);
  CHECK(h.manager().counters().pending == 4);

  FetchReply fetched = h.manager().fetch("job", 0, 100);
  CHECK(custom_ids(fetched.records) == std::vector<std::string>{"line-7", "r4", "r1"});
  CHECK_FALSE(fetched.job_done);
  JobStatusReply status = h.manager().status("job");
  CHECK(status.state == "running");
  CHECK(status.total == 7);
  CHECK(status.completed == 2);
  CHECK(status.failed == 1);
  CHECK(status.final_received);
  // The chunk, sent again by a producer that missed the ACK, is still a duplicate.
  CHECK(h.manager().submit(chunk_of("job", 0, true, lines)).outcome == SubmitOutcome::kDuplicate);

  for (const EngineRequest& r : again)
    h.manager().complete(answer(r));
  fetched = h.wait_for_records("job", 7);
  CHECK(fetched.records.size() == 7);
  const std::map<std::string, int> counts = count_ids(fetched.records);
  CHECK(counts.size() == 7);
  for (const auto& [id, count] : counts)
    CHECK_MESSAGE(count == 1, id);
  CHECK(fetched.job_done);
  CHECK(h.manager().status("job").state == "finished");

  // A finished job queues nothing after another restart.
  h.close();
  h.open();
  CHECK_FALSE(h.requests().receive_for(std::chrono::milliseconds(20)).has_value());
  CHECK(h.manager().counters().resumed == 0);
  CHECK(h.manager().fetch("job", 0, 100).records.size() == 7);
  CHECK(h.manager().fetch("job", 0, 100).job_done);
}

TEST_CASE("restart: a cut last result line is repaired and its request run again") {
  JobManagerHarness h;
  REQUIRE(h.manager().submit(chunk_of("job", 0, true, completion_lines("r", 3))).outcome ==
          SubmitOutcome::kAccepted);
  for (const EngineRequest& r : h.take(3))
    h.manager().complete(answer(r));
  const FetchReply complete = h.wait_for_records("job", 3);
  REQUIRE(complete.job_done);
  const std::string last = custom_ids(complete.records).back();
  h.close();

  const auto file = h.result_file("job");
  std::filesystem::resize_file(file, std::filesystem::file_size(file) - 4);
  h.open();
  const std::vector<EngineRequest> again = h.take(1);
  CHECK(again[0].origin->custom_id == last);
  CHECK(h.requests().size() == 0);
  FetchReply fetched = h.manager().fetch("job", 0, 100);
  CHECK(fetched.records.size() == 2);
  CHECK_FALSE(fetched.job_done);
  CHECK(h.manager().status("job").completed == 2);

  h.manager().complete(answer(again[0]));
  fetched = h.wait_for_records("job", 3);
  CHECK(count_ids(fetched.records).size() == 3);
  CHECK(custom_ids(fetched.records).back() == last);
  CHECK(fetched.job_done);
  CHECK(h.manager().status("job").completed == 3);
}

TEST_CASE("restart: a cancelled job queues nothing and stays cancelled") {
  JobManagerHarness h;
  REQUIRE(h.manager().submit(chunk_of("job", 0, true, completion_lines("r", 3))).outcome ==
          SubmitOutcome::kAccepted);
  h.take(3);
  REQUIRE(h.manager().cancel("job").ok());
  h.close();
  h.open();
  CHECK_FALSE(h.requests().receive_for(std::chrono::milliseconds(20)).has_value());
  CHECK(h.manager().counters().pending == 0);
  CHECK(h.manager().status("job").state == "cancelled");
  CHECK(h.manager().fetch("job", 0, 10).job_done);
  CHECK(h.manager().submit(chunk_of("job", 1, true, completion_lines("s", 1))).outcome ==
        SubmitOutcome::kRejected);
}

TEST_CASE("lease: the replica that took a request is journaled") {
  JobManagerHarness h;
  REQUIRE(h.manager().submit(chunk_of("job", 0, true, completion_lines("r", 2))).outcome ==
          SubmitOutcome::kAccepted);
  const std::vector<EngineRequest> requests = h.take(2);
  h.manager().lease(requests[0].key, 3);
  h.manager().lease(requests[1].key, 5);
  h.manager().lease(requests[1].key, 7);         // handed back and taken again: the last one counts
  h.manager().lease(requests[1].key + 1000, 9);  // no such request: ignored
  h.close();

  auto journal = JobJournal::open(h.dir());
  REQUIRE_MESSAGE(journal.ok(), journal.status().to_string());
  const JournalJob& job = (*journal)->state().jobs.at("job");
  REQUIRE(job.leases.size() == 2);
  CHECK(job.leases.at("r0").epoch == 3);
  CHECK(job.leases.at("r1").epoch == 7);
  CHECK(job.leases.at("r1").job_id == "job");
  CHECK(job.leases.at("r1").custom_id == "r1");
}

}  // namespace
}  // namespace conveyor
