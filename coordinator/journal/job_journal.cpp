#include "coordinator/journal/job_journal.h"

#include <system_error>
#include <utility>

namespace conveyor {

Expected<std::unique_ptr<JobJournal>> JobJournal::open(const std::filesystem::path& dir,
                                                       JobJournalOptions options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return io_error("cannot create the journal directory", dir, ec.value());
  auto log = RecordLog::open(dir / kFileName,
                             RecordLogOptions{.max_record_bytes = options.max_record_bytes});
  if (!log) return log.status();
  std::unique_ptr<JobJournal> journal(new JobJournal(std::move(*log), options));
  const auto payloads = journal->log_->take_records();
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    auto record = decode_journal_record(payloads[i]);
    if (!record) {
      return Status(ErrorCode::kMalformed, journal->path().string() + ": record " +
                                               std::to_string(i) + " is intact but unreadable (" +
                                               record.status().message() + ")");
    }
    apply_journal_record(journal->state_, *record);
  }
  return journal;
}

JobJournal::JobJournal(std::unique_ptr<RecordLog> log, JobJournalOptions options)
    : log_(std::move(log)), options_(options) {}

Status JobJournal::append_durable(const JournalRecord& record) {
  auto payload = encode_journal_record(record);
  if (!payload) return payload.status();
  return log_->append_durable(std::move(*payload));
}

Status JobJournal::accept_chunk(const JobChunk& chunk) {
  return append_durable(chunk);
}

void JobJournal::lease(const RequestLease& lease) {
  // A lease that cannot be encoded (an over-long id) is dropped: leases only inform
  // replay, and the request's own records are unaffected.
  if (auto payload = encode_journal_record(lease)) log_->append(std::move(*payload));
}

Status JobJournal::done(const RequestDone& done) {
  return append_durable(done);
}

Status JobJournal::done_all(const std::vector<RequestDone>& done) {
  std::uint64_t last = 0;
  for (const RequestDone& d : done) {
    auto payload = encode_journal_record(d);
    if (!payload) return payload.status();
    last = log_->append(std::move(*payload));
  }
  return done.empty() ? Status() : log_->wait_durable(last);
}

Status JobJournal::cancel(const std::string& job_id) {
  return append_durable(JobCancelled{job_id});
}

Status JobJournal::release(const std::string& job_id) {
  return append_durable(JobReleased{job_id});
}

Status JobJournal::compact(const JournalState& live) {
  // Half a record for lines leaves room for the record's ids and lengths.
  const auto records = journal_state_records(live, options_.max_record_bytes / 2);
  std::vector<std::vector<std::uint8_t>> payloads;
  payloads.reserve(records.size());
  for (const JournalRecord& record : records) {
    auto payload = encode_journal_record(record);
    if (!payload) return payload.status();
    payloads.push_back(std::move(*payload));
  }
  return log_->compact(payloads);
}

bool JobJournal::compaction_due() const {
  const RecordLogCounters c = log_->counters();
  return c.file_bytes > 2 * c.compacted_bytes &&
         c.file_bytes - c.compacted_bytes >= options_.compact_min_growth_bytes;
}

JobJournalCounters JobJournal::counters() const {
  const RecordLogCounters c = log_->counters();
  return JobJournalCounters{
      .records = c.records,
      .fsyncs = c.groups,
      .bytes = c.bytes,
      .file_bytes = c.file_bytes,
      .compactions = c.compactions,
      .last_fsync_seconds = c.last_fsync_seconds,
      .average_fsync_seconds =
          c.groups == 0 ? 0.0 : c.total_fsync_seconds / static_cast<double>(c.groups),
  };
}

}  // namespace conveyor
