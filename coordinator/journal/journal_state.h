// JournalState: what the job journal's records add up to. Replay folds every record
// into it with apply_journal_record(); the journal's owner may keep its live state with
// the same function, so that what it later hands to JobJournal::compact() follows the
// same rules as replay.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "coordinator/journal/journal_record.h"

namespace conveyor {

struct JournalJob {
  std::set<std::uint32_t> chunks;  // chunk numbers received
  bool final_received = false;
  std::vector<std::string> lines;    // request lines in acceptance order, each once
  std::string producer;              // of the latest accepted chunk
  std::set<std::string> done;        // custom_ids whose terminal line is written
  std::uint64_t failed = 0;          // how many of `done` ended in an error line
  std::set<std::string> failed_ids;  // which ones (compaction needs them)
  bool cancelled = false;
  std::map<std::string, RequestLease> leases;  // the last lease per custom_id

  bool operator==(const JournalJob&) const = default;
};

struct JournalState {
  std::map<std::string, JournalJob> jobs;  // by job_id; released jobs are absent

  bool operator==(const JournalState&) const = default;
};

// Folds one record into `state`:
// - JobChunk: ignored when its chunk number was already received (a producer's retry);
//   otherwise its lines are appended and its number recorded.
// - CompactedChunks: the same for a set of numbers (ignored when all are known); with
//   no numbers, a continuation whose lines are always appended.
// - RequestLease: replaces the request's previous lease.
// - RequestDone: marks the request done once; a repeated one changes nothing.
// - JobCancelled: marks the job cancelled.
// - JobReleased: forgets the job.
// Any record but JobReleased creates its job when it is not known.
void apply_journal_record(JournalState& state, const JournalRecord& record);

// Records whose replay onto an empty state rebuilds `state` exactly: per job, its lines
// as one CompactedChunks carrying every chunk number received (continued in further
// records when the lines exceed `record_line_bytes`), then its leases, done requests
// and cancellation.
std::vector<JournalRecord> journal_state_records(const JournalState& state,
                                                 std::size_t record_line_bytes);

}  // namespace conveyor
