#include "coordinator/cluster/job_manager.h"

#include <algorithm>
#include <iterator>
#include <set>
#include <variant>

#include "common/log/log.h"
#include "coordinator/producer/job_id.h"
#include "coordinator/sink.h"

namespace conveyor {
namespace {

spdlog::logger& jobs_log() {
  static spdlog::logger& out = logger("jobs");
  return out;
}

// A result stream record is the line without its newline.
std::string without_newline(std::string line) {
  if (!line.empty() && line.back() == '\n') line.pop_back();
  return line;
}

std::filesystem::path result_file(const std::filesystem::path& dir, const std::string& job_id) {
  return dir / "results" / (job_id + ".jsonl");
}

}  // namespace

Expected<std::unique_ptr<JobManager>> JobManager::open(JobManagerOptions options,
                                                       RequestPreparer preparer,
                                                       Channel<EngineRequest>& requests) {
  Expected<std::unique_ptr<JobJournal>> journal = JobJournal::open(options.dir);
  if (!journal.ok()) return journal.status();
  std::error_code ec;
  std::filesystem::create_directories(options.dir / "results", ec);
  if (ec) {
    return Status(ErrorCode::kIo,
                  "cannot create " + (options.dir / "results").string() + ": " + ec.message());
  }
  std::unique_ptr<JobManager> manager(new JobManager(std::move(options), std::move(preparer),
                                                     requests, std::move(journal).value()));
  if (Status s = manager->resume(); !s.ok()) return s;
  return manager;
}

JobManager::JobManager(JobManagerOptions options, RequestPreparer preparer,
                       Channel<EngineRequest>& requests, std::unique_ptr<JobJournal> journal)
    : options_(std::move(options)),
      preparer_(std::move(preparer)),
      requests_(requests),
      journal_(std::move(journal)) {
  live_ = journal_->state();
}

JobManager::~JobManager() {
  stop();
}

Expected<JobManager::Job*> JobManager::open_job(const std::string& job_id) {
  auto it = jobs_.find(job_id);
  if (it != jobs_.end()) return &it->second;
  ResultStreamContents contents;
  Expected<std::unique_ptr<ResultStream>> stream =
      ResultStream::open(result_file(options_.dir, job_id), &contents);
  if (!stream.ok()) return stream.status();
  Job job;
  job.results = std::move(stream).value();
  job.done.insert(contents.custom_ids.begin(), contents.custom_ids.end());
  job.failed = contents.errors;
  job.completed = static_cast<std::int64_t>(contents.custom_ids.size()) - contents.errors;
  return &jobs_.emplace(job_id, std::move(job)).first->second;
}

Status JobManager::resume() {
  std::lock_guard lock(mutex_);
  std::vector<Finished> errors;
  for (const auto& [job_id, recorded] : live_.jobs) {
    Expected<Job*> job = open_job(job_id);
    if (!job.ok()) return job.status();
    (*job)->final = recorded.final_received;
    (*job)->cancelled = recorded.cancelled;
    (*job)->cancel_flag->store(recorded.cancelled);
    const std::int64_t before = pending_;
    take_lines(job_id, **job, recorded.lines, errors);
    counters_.resumed += pending_ - before;
  }
  if (counters_.resumed > 0 || !errors.empty()) {
    log::info(jobs_log(), "journal: " + std::to_string(live_.jobs.size()) + " job(s), " +
                              std::to_string(counters_.resumed) + " request(s) to finish");
  }
  return write(std::move(errors));
}

void JobManager::take_lines(const std::string& job_id, Job& job,
                            const std::vector<std::string>& lines, std::vector<Finished>& errors) {
  const auto done = [&job](const std::string& id) { return job.done.count(id) != 0; };
  for (const std::string& line : lines) {
    const std::int64_t number = job.next_line++;
    JudgedLine judged = preparer_.judge(line, line.size(), number, job.seen, done);
    if (judged.blank) continue;
    ++job.total;
    if (judged.skipped) continue;
    if (judged.error) {
      errors.push_back(
          {job_id, judged.custom_id, {true, without_newline(format_error_line(*judged.error))}});
      continue;
    }
    if (job.cancelled) continue;
    EngineRequest request = std::move(*judged.request);
    request.key = next_key_++;
    request.cancelled = job.cancel_flag;
    request.submitted = SteadyClock::now();
    keys_[request.key] = {job_id, judged.custom_id};
    ++job.pending;
    ++pending_;
    // Unbounded: what it holds is bounded by queue_limit at submission.
    (void)requests_.send(std::move(request));
  }
}

Status JobManager::write(std::vector<Finished> batch) {
  if (batch.empty()) return {};
  if (!failure_.ok()) return failure_;
  std::set<std::string> touched;
  std::vector<RequestDone> records;
  for (Finished& f : batch) {
    auto it = jobs_.find(f.job_id);
    if (it == jobs_.end() || !it->second.done.insert(f.custom_id).second) continue;
    Job& job = it->second;
    if (Status s = job.results->append(f.record); !s.ok()) {
      failure_ = s;
      return s;
    }
    (f.record.error ? job.failed : job.completed) += 1;
    touched.insert(f.job_id);
    records.push_back({f.job_id, f.custom_id, f.record.error});
  }
  // The lines are on disk before the journal says so: the stream is the authority.
  for (const std::string& job_id : touched) {
    if (Status s = jobs_.at(job_id).results->sync(); !s.ok()) {
      failure_ = s;
      return s;
    }
  }
  if (Status s = journal_->done_all(records); !s.ok()) {
    failure_ = s;
    return s;
  }
  for (const RequestDone& d : records)
    apply_journal_record(live_, d);
  counters_.finished += static_cast<std::int64_t>(records.size());
  return {};
}

JobManager::Finished JobManager::to_line(const std::string& job_id,
                                         const EngineResult& result) const {
  TerminalLine terminal = terminal_line(result, options_.meta, options_.tokenizer.get());
  return {job_id,
          result.origin->custom_id,
          {terminal.error, without_newline(std::move(terminal.line))}};
}

void JobManager::start(std::function<void(const std::string&)> on_new_results,
                       std::function<void()> on_failure) {
  on_new_results_ = std::move(on_new_results);
  on_failure_ = std::move(on_failure);
  completion_thread_ = std::thread([this] { completion_loop(); });
}

void JobManager::stop() {
  completions_.close();
  if (completion_thread_.joinable()) completion_thread_.join();
}

void JobManager::complete(EngineResult result) {
  (void)completions_.send(std::move(result));
}

void JobManager::lease(std::uint64_t key, std::uint64_t epoch) {
  leases_.fetch_add(1);
  // Recorded on the completion thread: the actor that takes a request must not wait
  // behind the fsyncs the journal's other callers hold the lock for.
  (void)completions_.send(Lease{key, epoch});
}

void JobManager::completion_loop() {
  while (auto first = completions_.receive()) {
    std::vector<Completion> batch;
    batch.push_back(std::move(*first));
    while (auto more = completions_.try_receive())
      batch.push_back(std::move(*more));
    std::set<std::string> touched;
    bool failed = false;
    {
      std::lock_guard lock(mutex_);
      std::vector<Finished> lines;
      for (const Completion& c : batch) {
        if (const Lease* lease = std::get_if<Lease>(&c)) {
          auto owner = keys_.find(lease->key);
          if (owner == keys_.end()) continue;
          const RequestLease record{owner->second.job_id, owner->second.custom_id, lease->epoch,
                                    "replica-" + std::to_string(lease->epoch)};
          journal_->lease(record);
          apply_journal_record(live_, record);
          continue;
        }
        const EngineResult& r = std::get<EngineResult>(c);
        auto owner = keys_.find(r.key);
        if (owner == keys_.end()) continue;  // its job was released
        const std::string job_id = owner->second.job_id;
        keys_.erase(owner);
        auto job = jobs_.find(job_id);
        if (job == jobs_.end()) continue;
        --pending_;
        --job->second.pending;
        if (job->second.cancelled || r.origin == nullptr) continue;
        lines.push_back(to_line(job_id, r));
        touched.insert(job_id);
      }
      if (Status s = write(std::move(lines)); !s.ok()) {
        log::error(jobs_log(), "cannot record results: " + s.to_string());
        failed = true;
      } else {
        compact_if_due();
      }
    }
    if (on_new_results_) {
      for (const std::string& job_id : touched)
        on_new_results_(job_id);
    }
    // Results that cannot be recorded cannot be promised: the coordinator stops,
    // and the journal (which has the requests) lets a restart redo them.
    if (failed && on_failure_) on_failure_();
  }
}

SubmitReply JobManager::submit(const SubmitChunk& chunk) {
  if (Status s = validate_job_id(chunk.job_id); !s.ok()) {
    return {SubmitOutcome::kRejected, s.message(), 0};
  }
  std::vector<Finished> errors;
  Status written;
  {
    std::lock_guard lock(mutex_);
    if (!failure_.ok()) return {SubmitOutcome::kRejected, failure_.to_string(), 0};
    auto recorded = live_.jobs.find(chunk.job_id);
    if (recorded != live_.jobs.end()) {
      const JournalJob& j = recorded->second;
      if (j.chunks.count(chunk.chunk) != 0) {
        ++counters_.duplicate_chunks;
        return {SubmitOutcome::kDuplicate, "chunk already accepted", 0};
      }
      if (j.cancelled)
        return {SubmitOutcome::kRejected, "job " + chunk.job_id + " is cancelled", 0};
      if (j.final_received && !j.chunks.empty() && chunk.chunk > *j.chunks.rbegin()) {
        return {SubmitOutcome::kRejected, "chunk after the job's final chunk", 0};
      }
    }
    const auto lines = static_cast<std::int64_t>(chunk.lines.size());
    if (pending_ > 0 && pending_ + lines > options_.queue_limit) {
      ++counters_.busy;
      return {SubmitOutcome::kBusy,
              "the coordinator's queue is full (" + std::to_string(pending_) + " of " +
                  std::to_string(options_.queue_limit) + " requests pending)",
              500};
    }
    if (recorded == live_.jobs.end()) {
      // A result file under a name the journal does not know is left from a released
      // job (the coordinator died between journaling the release and removing it): its
      // lines are not this job's, and read back they would pass for finished requests.
      std::error_code ec;
      std::filesystem::remove(result_file(options_.dir, chunk.job_id), ec);
      if (ec) {
        return {SubmitOutcome::kRejected,
                "cannot remove an old result file of job " + chunk.job_id + ": " + ec.message(), 0};
      }
    }
    JobChunk record{chunk.job_id, chunk.chunk, chunk.final, chunk.lines, chunk.producer};
    if (Status s = journal_->accept_chunk(record); !s.ok()) {
      failure_ = s;
      return {SubmitOutcome::kRejected, "the journal failed: " + s.to_string(), 0};
    }
    apply_journal_record(live_, record);
    Expected<Job*> job = open_job(chunk.job_id);
    if (!job.ok()) {
      failure_ = job.status();
      return {SubmitOutcome::kRejected, job.status().to_string(), 0};
    }
    (*job)->final = (*job)->final || chunk.final;
    take_lines(chunk.job_id, **job, chunk.lines, errors);
    ++counters_.accepted_chunks;
    written = write(std::move(errors));
  }
  if (on_new_results_) on_new_results_(chunk.job_id);
  // The chunk is journaled (its requests will run after a restart), but error lines
  // that cannot be recorded mean the coordinator must stop.
  if (!written.ok() && on_failure_) on_failure_();
  return {SubmitOutcome::kAccepted, "", 0};
}

std::string JobManager::state_of(const Job& job) const {
  if (job.cancelled) return "cancelled";
  if (!job.final) return "receiving";
  return job.completed + job.failed >= job.total ? "finished" : "running";
}

JobStatusReply JobManager::status(const std::string& job_id) {
  std::lock_guard lock(mutex_);
  JobStatusReply reply;
  auto it = jobs_.find(job_id);
  auto recorded = live_.jobs.find(job_id);
  if (it == jobs_.end() || recorded == live_.jobs.end()) return reply;
  const Job& job = it->second;
  reply.found = true;
  reply.state = state_of(job);
  reply.total = job.total;
  reply.completed = job.completed;
  reply.failed = job.failed;
  reply.chunks = static_cast<std::uint32_t>(recorded->second.chunks.size());
  reply.final_received = job.final;
  return reply;
}

std::vector<JobProgress> JobManager::progress() const {
  std::lock_guard lock(mutex_);
  std::vector<JobProgress> jobs;
  jobs.reserve(jobs_.size());
  for (const auto& [id, job] : jobs_)
    jobs.push_back({id, state_of(job), job.total, job.completed, job.failed});
  return jobs;
}

Status JobManager::cancel(const std::string& job_id) {
  std::lock_guard lock(mutex_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return Status(ErrorCode::kNotFound, "no job " + job_id);
  if (it->second.cancelled || state_of(it->second) == "finished") return {};
  if (Status s = journal_->cancel(job_id); !s.ok()) return s;
  apply_journal_record(live_, JobCancelled{job_id});
  // Requests already queued or running finish, and their lines are dropped.
  it->second.cancelled = true;
  it->second.cancel_flag->store(true);
  return {};
}

Status JobManager::release(const std::string& job_id) {
  std::lock_guard lock(mutex_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return Status(ErrorCode::kNotFound, "no job " + job_id);
  if (Status s = journal_->release(job_id); !s.ok()) return s;
  apply_journal_record(live_, JobReleased{job_id});
  it->second.results->remove();
  // Its queued requests are not run, and results of those running find no key: a
  // job submitted again under the same id starts clean.
  it->second.cancel_flag->store(true);
  pending_ -= it->second.pending;
  for (auto key = keys_.begin(); key != keys_.end();) {
    key = key->second.job_id == job_id ? keys_.erase(key) : std::next(key);
  }
  jobs_.erase(it);
  compact_if_due();
  return {};
}

void JobManager::compact_if_due() {
  // Every journal call happens under mutex_, which the caller holds: nothing is
  // appended between taking live_ and the end of the compaction.
  if (!journal_->compaction_due()) return;
  if (Status s = journal_->compact(live_); !s.ok()) {
    log::error(jobs_log(), "journal compaction failed: " + s.to_string());
  }
}

FetchReply JobManager::fetch(const std::string& job_id, std::uint64_t offset,
                             std::size_t max_records) {
  std::lock_guard lock(mutex_);
  FetchReply reply;
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return reply;
  const Job& job = it->second;
  reply.found = true;
  Expected<std::vector<ResultRecord>> records = job.results->read(offset, max_records);
  if (records.ok()) reply.records = std::move(records).value();
  reply.next_offset = offset + reply.records.size();
  const std::string state = state_of(job);
  reply.job_done =
      (state == "finished" || state == "cancelled") && reply.next_offset >= job.results->size();
  reply.total = job.total;
  reply.completed = job.completed;
  reply.failed = job.failed;
  return reply;
}

JobManagerCounters JobManager::counters() const {
  std::lock_guard lock(mutex_);
  JobManagerCounters c = counters_;
  c.jobs = static_cast<std::int64_t>(jobs_.size());
  c.pending = pending_;
  c.leases = leases_.load();
  return c;
}

}  // namespace conveyor
