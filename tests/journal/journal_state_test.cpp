// How records add up to a JournalState (duplicates, last lease, release), and that the
// records compaction writes for a state rebuild exactly that state.
#include "coordinator/journal/journal_state.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace conveyor {
namespace {

JournalState replay(const std::vector<JournalRecord>& records) {
  JournalState state;
  for (const JournalRecord& record : records)
    apply_journal_record(state, record);
  return state;
}

TEST_CASE("compacted chunks count as received; a continuation only adds lines") {
  const JournalState state = replay({
      CompactedChunks{"j", {0, 2}, false, {"a", "b"}, "p"},
      CompactedChunks{"j", {}, true, {"c"}, ""},
      CompactedChunks{"j", {0, 2}, false, {"a", "b"}, "p"},  // nothing new: ignored
      JobChunk{"j", 2, false, {"dup"}, "p"},
      JobChunk{"j", 1, false, {"d"}, "p"},
  });
  const JournalJob& job = state.jobs.at("j");
  CHECK(job.chunks == std::set<std::uint32_t>{0, 1, 2});
  CHECK(job.final_received);
  CHECK(job.lines == std::vector<std::string>{"a", "b", "c", "d"});
}

TEST_CASE("chunks append lines once, in acceptance order; a repeated chunk is ignored") {
  const JournalState state = replay({
      JobChunk{"j", 1, false, {"b1", "b2"}, "p1"},
      JobChunk{"j", 0, false, {"a1"}, "p1"},
      JobChunk{"j", 1, false, {"b1", "b2"}, "p1"},  // a producer's retry
      JobChunk{"j", 2, true, {"c1"}, "p2"},
  });
  const JournalJob& job = state.jobs.at("j");
  CHECK(job.chunks == std::set<std::uint32_t>{0, 1, 2});
  CHECK(job.final_received);
  CHECK(job.lines == std::vector<std::string>{"b1", "b2", "a1", "c1"});
  CHECK(job.producer == "p2");
}

TEST_CASE("done counts each request once; the last lease wins; release forgets the job") {
  const JournalState state = replay({
      JobChunk{"j", 0, true, {"x"}, "p"},
      RequestLease{"j", "r1", 1, "replica-a"},
      RequestLease{"j", "r1", 2, "replica-b"},
      RequestLease{"j", "r2", 1, "replica-a"},
      RequestDone{"j", "r1", true},
      RequestDone{"j", "r1", true},
      RequestDone{"j", "r2", false},
      JobCancelled{"j"},
      JobChunk{"gone", 0, true, {"y"}, "p"},
      JobReleased{"gone"},
      JobReleased{"never-known"},
  });
  REQUIRE(state.jobs.size() == 1);
  const JournalJob& job = state.jobs.at("j");
  CHECK(job.done == std::set<std::string>{"r1", "r2"});
  CHECK(job.failed == 1);
  CHECK(job.failed_ids == std::set<std::string>{"r1"});
  CHECK(job.cancelled);
  CHECK(job.leases.at("r1") == RequestLease{"j", "r1", 2, "replica-b"});
  CHECK(job.leases.at("r2").epoch == 1);
}

TEST_CASE("a state's records rebuild it, split into continuations when lines are long") {
  JournalState state = replay({
      JobChunk{"a", 4, false, {"one", "two", "three", "four", "five"}, "p"},
      JobChunk{"a", 2, true, {"six"}, "q"},
      RequestLease{"a", "one", 3, "r"},
      RequestDone{"a", "one", false},
      RequestDone{"a", "two", true},
      JobCancelled{"b"},
      RequestDone{"c", "orphan", false},
      CompactedChunks{"d", {}, false, {"continued"}, ""},
  });
  state.jobs["only-a-name"];
  for (std::size_t budget : {std::size_t{1}, std::size_t{16}, std::size_t{1} << 20}) {
    CAPTURE(budget);
    const auto records = journal_state_records(state, budget);
    CHECK(replay(records) == state);
    std::size_t chunk_records = 0;
    for (const JournalRecord& record : records)
      chunk_records += std::holds_alternative<CompactedChunks>(record) ? 1 : 0;
    // Job "a" needs one record per line at the smallest budget, one in all at the
    // largest; "d" and "only-a-name" one each.
    CHECK(chunk_records == (budget == 1 ? 6u : budget == 16 ? 4u : 1u) + 2u);
  }
}

}  // namespace
}  // namespace conveyor
