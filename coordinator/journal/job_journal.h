// JobJournal: the coordinator's write-ahead log of jobs, on a RecordLog in
// `dir/journal.log`.
//
// Producers get their ACK only after accept_chunk() returns, so an ACKed chunk is
// durable; done() returns once a request's completion is durable, so a coordinator
// killed with -9 and restarted on the same directory resumes every request that is not
// done and never generates one that is. Calls from several threads at once share
// fsyncs (group commit).
//
// state() is the replayed state from open(), for startup only: the journal does not
// update it afterwards. The owner keeps its own live state (apply_journal_record()
// folds each record it journals the way replay would) and hands it to compact().
//
// When to compact: after releases, when compaction_due() says the file has grown to
// more than twice its size after the last compaction and by at least
// compact_min_growth_bytes. Released and finished jobs then vanish from the file, so it
// stays proportional to the unfinished work instead of growing without bound.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "common/status.h"
#include "coordinator/journal/journal_record.h"
#include "coordinator/journal/journal_state.h"
#include "coordinator/journal/record_log.h"

namespace conveyor {

struct JobJournalOptions {
  std::uint32_t max_record_bytes = 64u << 20;
  std::uint64_t compact_min_growth_bytes = 64u << 20;
};

struct JobJournalCounters {
  std::uint64_t records = 0;  // appended since open
  std::uint64_t fsyncs = 0;   // group commits
  std::uint64_t bytes = 0;    // appended since open
  std::uint64_t file_bytes = 0;
  std::uint64_t compactions = 0;
  double last_fsync_seconds = 0;
  double average_fsync_seconds = 0;
};

class JobJournal {
 public:
  static constexpr const char* kFileName = "journal.log";

  // Creates `dir` when needed, opens `dir/journal.log` (cutting off a torn tail) and
  // replays it into state(). A record that passes its checksum but does not decode (a
  // newer version, a bug) is kMalformed: refusing to start beats forgetting jobs.
  static Expected<std::unique_ptr<JobJournal>> open(const std::filesystem::path& dir,
                                                    JobJournalOptions options = {});

  const JournalState& state() const { return state_; }
  std::uint64_t dropped_tail_bytes() const { return log_->dropped_tail_bytes(); }
  const std::filesystem::path& path() const { return log_->path(); }

  // Durable on return. Whether the chunk is a duplicate is the caller's question (its
  // state answers it); replay ignores a repeated chunk number anyway.
  Status accept_chunk(const JobChunk& chunk);
  // Informational: queued, not waited for; a failure shows in the next durable call.
  void lease(const RequestLease& lease);
  // Durable on return.
  Status done(const RequestDone& done);
  // Several at once, durable on return, with one wait for them all (one fsync when
  // nothing else is in flight).
  Status done_all(const std::vector<RequestDone>& done);
  Status cancel(const std::string& job_id);
  Status release(const std::string& job_id);

  // Rewrites the log to hold only what `live` needs (see journal_state_records()).
  // `live` must include every record journaled before this call: the owner serialises
  // its journal calls with compaction.
  Status compact(const JournalState& live);
  bool compaction_due() const;

  JobJournalCounters counters() const;

 private:
  JobJournal(std::unique_ptr<RecordLog> log, JobJournalOptions options);
  Status append_durable(const JournalRecord& record);

  std::unique_ptr<RecordLog> log_;
  JobJournalOptions options_;
  JournalState state_;
};

}  // namespace conveyor
