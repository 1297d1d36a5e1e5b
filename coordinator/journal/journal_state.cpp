#include "coordinator/journal/journal_state.h"

#include <iterator>
#include <type_traits>

namespace conveyor {
namespace {

void add_lines(JournalJob& job, bool final, const std::vector<std::string>& lines,
               const std::string& producer) {
  if (!producer.empty()) job.producer = producer;
  job.final_received = job.final_received || final;
  job.lines.insert(job.lines.end(), lines.begin(), lines.end());
}

void apply(JournalState& state, const JobChunk& r) {
  JournalJob& job = state.jobs[r.job_id];
  if (!job.chunks.insert(r.chunk).second) return;
  add_lines(job, r.final, r.lines, r.producer);
}

void apply(JournalState& state, const CompactedChunks& r) {
  JournalJob& job = state.jobs[r.job_id];
  if (!r.chunks.empty()) {
    bool any_new = false;
    for (const std::uint32_t chunk : r.chunks)
      any_new = job.chunks.insert(chunk).second || any_new;
    if (!any_new) return;  // all of it is known already
  }
  add_lines(job, r.final, r.lines, r.producer);
}

void apply(JournalState& state, const RequestLease& r) {
  state.jobs[r.job_id].leases.insert_or_assign(r.custom_id, r);
}

void apply(JournalState& state, const RequestDone& r) {
  JournalJob& job = state.jobs[r.job_id];
  if (!job.done.insert(r.custom_id).second) return;
  if (r.failed) {
    job.failed += 1;
    job.failed_ids.insert(r.custom_id);
  }
}

void apply(JournalState& state, const JobCancelled& r) {
  state.jobs[r.job_id].cancelled = true;
}

void apply(JournalState& state, const JobReleased& r) {
  state.jobs.erase(r.job_id);
}

// The job's lines: one record claiming every chunk number received, continued in
// further records (with no chunk numbers) whenever `record_line_bytes` is reached.
void append_line_records(std::vector<JournalRecord>& records, const std::string& job_id,
                         const JournalJob& job, std::size_t record_line_bytes) {
  CompactedChunks head;
  head.job_id = job_id;
  head.chunks.assign(job.chunks.begin(), job.chunks.end());
  head.final = job.final_received;
  head.producer = job.producer;
  std::vector<CompactedChunks> continuations;
  CompactedChunks* current = &head;
  std::size_t bytes = 0;
  for (const std::string& line : job.lines) {
    const std::size_t cost = line.size() + sizeof(std::uint32_t);
    if (bytes > 0 && bytes + cost > record_line_bytes) {
      current = &continuations.emplace_back();
      current->job_id = job_id;
      bytes = 0;
    }
    current->lines.push_back(line);
    bytes += cost;
  }
  records.emplace_back(std::move(head));
  for (CompactedChunks& c : continuations)
    records.emplace_back(std::move(c));
}

}  // namespace

void apply_journal_record(JournalState& state, const JournalRecord& record) {
  std::visit([&](const auto& r) { apply(state, r); }, record);
}

std::vector<JournalRecord> journal_state_records(const JournalState& state,
                                                 std::size_t record_line_bytes) {
  std::vector<JournalRecord> records;
  for (const auto& [job_id, job] : state.jobs) {
    const bool only_a_name = job.chunks.empty() && job.lines.empty() && !job.final_received &&
                             job.leases.empty() && job.done.empty() && !job.cancelled;
    if (!job.chunks.empty() || !job.lines.empty() || job.final_received || only_a_name) {
      append_line_records(records, job_id, job, record_line_bytes);
    }
    for (const auto& [custom_id, lease] : job.leases)
      records.emplace_back(lease);
    for (const std::string& custom_id : job.done)
      records.emplace_back(RequestDone{job_id, custom_id, job.failed_ids.contains(custom_id)});
    if (job.cancelled) records.emplace_back(JobCancelled{job_id});
  }
  return records;
}

}  // namespace conveyor
