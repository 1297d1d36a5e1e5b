// JobJournal: what is journaled is replayed after a reopen (also after a torn tail and
// a crashed compaction), concurrent acceptances share fsyncs, compaction keeps the
// state while shrinking the file, and an intact but unreadable record stops the open.
#include "coordinator/journal/job_journal.h"

#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "tests/journal/journal_test_files.h"
#include "tests/temp_dir.h"

namespace conveyor {
namespace {

using testing::read_bytes;
using testing::TempDir;
using testing::write_bytes;

std::unique_ptr<JobJournal> open_journal(const std::filesystem::path& dir,
                                         JobJournalOptions options = {}) {
  auto journal = JobJournal::open(dir, options);
  REQUIRE_MESSAGE(journal.ok(), journal.status().to_string());
  return std::move(*journal);
}

std::vector<std::string> request_lines(const std::string& job, int first, int count) {
  std::vector<std::string> lines;
  for (int i = first; i < first + count; ++i) {
    lines.push_back("{\"custom_id\":\"" + job + "-" + std::to_string(i) +
                    "\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{}}");
  }
  return lines;
}

// Journals a small history: two jobs in progress, one cancelled, one released.
void write_history(JobJournal& journal) {
  REQUIRE(journal.accept_chunk(JobChunk{"a", 0, false, request_lines("a", 0, 3), "p1"}).ok());
  REQUIRE(journal.accept_chunk(JobChunk{"a", 1, true, request_lines("a", 3, 2), "p1"}).ok());
  REQUIRE(journal.accept_chunk(JobChunk{"b", 0, true, request_lines("b", 0, 2), "p2"}).ok());
  REQUIRE(journal.accept_chunk(JobChunk{"c", 0, true, request_lines("c", 0, 1), "p3"}).ok());
  journal.lease(RequestLease{"a", "a-0", 1, "replica-0"});
  journal.lease(RequestLease{"a", "a-1", 1, "replica-1"});
  REQUIRE(journal.done(RequestDone{"a", "a-0", false}).ok());
  REQUIRE(journal.done(RequestDone{"a", "a-2", true}).ok());
  REQUIRE(journal.cancel("b").ok());
  REQUIRE(journal.done(RequestDone{"c", "c-0", false}).ok());
  REQUIRE(journal.release("c").ok());
}

TEST_CASE("a reopened journal replays what was journaled") {
  TempDir dir;
  const auto journal_dir = dir.file("journal");  // created by open
  {
    auto journal = open_journal(journal_dir);
    CHECK(journal->state().jobs.empty());
    write_history(*journal);
    CHECK(journal->state().jobs.empty());  // the startup state is not updated
    CHECK(journal->path() == journal_dir / "journal.log");
  }
  auto journal = open_journal(journal_dir);
  const JournalState& state = journal->state();
  REQUIRE(state.jobs.size() == 2);
  const JournalJob& a = state.jobs.at("a");
  CHECK(a.chunks == std::set<std::uint32_t>{0, 1});
  CHECK(a.final_received);
  CHECK(a.lines == request_lines("a", 0, 5));
  CHECK(a.done == std::set<std::string>{"a-0", "a-2"});
  CHECK(a.failed == 1);
  CHECK_FALSE(a.cancelled);
  CHECK(a.producer == "p1");
  CHECK(a.leases.size() == 2);
  CHECK(a.leases.at("a-1").replica == "replica-1");
  CHECK(state.jobs.at("b").cancelled);
  CHECK_FALSE(state.jobs.contains("c"));
}

TEST_CASE("a torn last record loses only that record") {
  TempDir dir;
  {
    auto journal = open_journal(dir.path());
    write_history(*journal);
    REQUIRE(journal->done(RequestDone{"a", "a-4", false}).ok());
  }
  const auto file = dir.file("journal.log");
  auto bytes = read_bytes(file);
  bytes.resize(bytes.size() - 3);
  write_bytes(file, bytes);
  auto journal = open_journal(dir.path());
  CHECK(journal->dropped_tail_bytes() > 0);
  CHECK(journal->state().jobs.at("a").done == std::set<std::string>{"a-0", "a-2"});
}

TEST_CASE("concurrent acceptances are all durable and share fsyncs") {
  TempDir dir;
  constexpr int kThreads = 8;
  constexpr int kChunks = 50;
  {
    auto journal = open_journal(dir.path());
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        const std::string job = "job-" + std::to_string(t);
        for (int c = 0; c < kChunks; ++c) {
          JobChunk chunk{job, static_cast<std::uint32_t>(c), c == kChunks - 1,
                         request_lines(job, c * 2, 2), "p"};
          if (!journal->accept_chunk(chunk).ok()) failures.fetch_add(1);
        }
      });
    }
    for (auto& thread : threads)
      thread.join();
    CHECK(failures.load() == 0);
    const JobJournalCounters c = journal->counters();
    CHECK(c.records == kThreads * kChunks);
    CHECK(c.fsyncs < c.records);
    CHECK(c.bytes == c.file_bytes);
    CHECK(c.average_fsync_seconds >= 0);
  }
  auto journal = open_journal(dir.path());
  REQUIRE(journal->state().jobs.size() == kThreads);
  for (const auto& [id, job] : journal->state().jobs) {
    CHECK(job.lines == request_lines(id, 0, 2 * kChunks));
    CHECK(job.final_received);
  }
}

TEST_CASE("compaction keeps the state, shrinks the file and later records survive") {
  TempDir dir;
  JournalState live;
  {
    auto journal = open_journal(dir.path());
    // The owner's live state, kept with the same rules as replay.
    const auto journal_record = [&](const JournalRecord& record) {
      apply_journal_record(live, record);
      if (const auto* chunk = std::get_if<JobChunk>(&record)) {
        REQUIRE(journal->accept_chunk(*chunk).ok());
      } else if (const auto* done = std::get_if<RequestDone>(&record)) {
        REQUIRE(journal->done(*done).ok());
      } else if (const auto* released = std::get_if<JobReleased>(&record)) {
        REQUIRE(journal->release(released->job_id).ok());
      }
    };
    for (int j = 0; j < 20; ++j) {
      const std::string job = "job-" + std::to_string(j);
      journal_record(JobChunk{job, 0, false, request_lines(job, 0, 10), "p"});
      journal_record(JobChunk{job, 1, true, request_lines(job, 10, 10), "p"});
      for (int i = 0; i < 20; ++i)
        journal_record(RequestDone{job, job + "-" + std::to_string(i), i % 7 == 0});
      if (j < 15) journal_record(JobReleased{job});  // finished and collected
    }
    journal_record(RequestDone{"job-19", "job-19-unfinished", false});
    const auto before = std::filesystem::file_size(journal->path());
    REQUIRE(journal->compact(live).ok());
    CHECK(std::filesystem::file_size(journal->path()) < before);
    CHECK(journal->counters().compactions == 1);
    CHECK_FALSE(journal->compaction_due());
    journal_record(JobChunk{"job-late", 0, true, request_lines("job-late", 0, 1), "p"});
  }
  auto journal = open_journal(dir.path());
  CHECK(journal->state() == live);
  CHECK(journal->state().jobs.size() == 6);
  CHECK(journal->state().jobs.at("job-16").chunks == std::set<std::uint32_t>{0, 1});
}

TEST_CASE("compaction splits a job's lines across records when they exceed one record") {
  TempDir dir;
  JournalState live;
  const JobJournalOptions small{.max_record_bytes = 1024, .compact_min_growth_bytes = 0};
  {
    auto journal = open_journal(dir.path(), small);
    for (std::uint32_t c = 0; c < 10; ++c) {
      JobChunk chunk{"big", c, c == 9, request_lines("big", static_cast<int>(c) * 5, 5), "p"};
      REQUIRE(journal->accept_chunk(chunk).ok());
      apply_journal_record(live, chunk);
    }
    CHECK(journal->compaction_due());  // grew from nothing
    REQUIRE(journal->compact(live).ok());
  }
  CHECK(open_journal(dir.path(), small)->state() == live);
}

TEST_CASE("a compaction file left by a crash is removed and the journal is intact") {
  TempDir dir;
  {
    auto journal = open_journal(dir.path());
    write_history(*journal);
  }
  JournalState expected = open_journal(dir.path())->state();
  write_bytes(dir.file("journal.log.compact"), std::vector<std::uint8_t>(100, 0xAB));
  auto journal = open_journal(dir.path());
  CHECK(journal->state() == expected);
  CHECK_FALSE(std::filesystem::exists(dir.file("journal.log.compact")));
}

TEST_CASE("an intact record that does not decode stops the open") {
  TempDir dir;
  {
    auto log = RecordLog::open(dir.file("journal.log"));
    REQUIRE(log.ok());
    REQUIRE((*log)->append_durable({kJournalRecordVersion, 42}).ok());
  }
  auto journal = JobJournal::open(dir.path());
  CHECK(journal.status().code() == ErrorCode::kMalformed);
}

TEST_CASE("a chunk larger than a record is refused, not half-written") {
  TempDir dir;
  const JobJournalOptions small{.max_record_bytes = 256, .compact_min_growth_bytes = 0};
  auto journal = open_journal(dir.path(), small);
  const Status big = journal->accept_chunk(JobChunk{"j", 0, true, request_lines("j", 0, 10), "p"});
  CHECK(big.code() == ErrorCode::kOutOfRange);
  CHECK(journal->accept_chunk(JobChunk{"j", 0, true, request_lines("j", 0, 1), "p"}).ok());
  journal.reset();
  CHECK(open_journal(dir.path(), small)->state().jobs.at("j").lines.size() == 1);
}

}  // namespace
}  // namespace conveyor
