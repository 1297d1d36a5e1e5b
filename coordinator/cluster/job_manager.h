// JobManager: the coordinator's jobs, behind the producer server (it is the
// JobService). A chunk of request lines is journaled (durable) before it is ACKed;
// its lines are then judged and tokenised and go to the shared request queue, from
// which the replicas' scheduler actors take them; bad lines become error lines at
// once. Finished requests come back from the actors on any thread: a completion
// thread writes their lines to the job's result stream, syncs it, then journals them
// done (group commit), and wakes producers waiting for results.
//
// Bounded: a chunk that would take the requests accepted but not finished past
// `queue_limit` is answered BUSY (nothing stored), unless nothing is pending at all.
//
// The journal is compacted as it grows (JobJournal::compaction_due) when results are
// written and when jobs are released, so it stays proportional to the jobs not yet
// released rather than to everything ever submitted.
//
// Restart: open() replays the journal; every line of an unreleased job whose
// custom_id has no line in the result stream is judged again and queued; finished
// ones are never run again, so a job's stream holds exactly one line per custom_id.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <variant>

#include "common/channel.h"
#include "coordinator/batch/result_line.h"
#include "coordinator/cluster/result_stream.h"
#include "coordinator/journal/job_journal.h"
#include "coordinator/producer/job_service.h"
#include "coordinator/request_preparer.h"
#include "coordinator/scheduler_actor.h"

namespace conveyor {

struct JobManagerOptions {
  std::filesystem::path dir;  // the journal directory; result streams in dir/results
  std::int64_t queue_limit = 100000;
  ResultMeta meta;
  std::shared_ptr<const Tokenizer> tokenizer;  // for log-prob token texts; may be null
};

struct JobManagerCounters {
  std::int64_t jobs = 0;
  std::int64_t pending = 0;  // requests accepted, not finished
  std::int64_t accepted_chunks = 0;
  std::int64_t duplicate_chunks = 0;
  std::int64_t busy = 0;
  std::int64_t finished = 0;  // result and error lines written since start
  std::int64_t resumed = 0;   // requests queued again at start
  std::int64_t leases = 0;    // requests taken by a replica (again after a requeue)
};

// One job's request counts, as STATUS reports them.
struct JobProgress {
  std::string job_id;
  std::string state;  // "running", "finished", "cancelled", ...
  std::int64_t total = 0;
  std::int64_t completed = 0;
  std::int64_t failed = 0;
};

class JobManager final : public JobService {
 public:
  static Expected<std::unique_ptr<JobManager>> open(JobManagerOptions options,
                                                    RequestPreparer preparer,
                                                    Channel<EngineRequest>& requests);
  ~JobManager() override;  // stop()

  // Starts the completion thread. `on_new_results`: a job's stream grew.
  // `on_failure`: results could not be recorded (a full or failing disk); the
  // coordinator must stop.
  void start(std::function<void(const std::string& job_id)> on_new_results,
             std::function<void()> on_failure = {});
  // Writes what has finished, then joins the completion thread.
  void stop();

  // From any thread: a request's result.
  void complete(EngineResult result);
  // From any thread: the replica of `epoch` took the request: journaled (not waited
  // for), so the journal says which pipeline last held each unfinished request.
  void lease(std::uint64_t key, std::uint64_t epoch);

  SubmitReply submit(const SubmitChunk& chunk) override;
  JobStatusReply status(const std::string& job_id) override;
  Status cancel(const std::string& job_id) override;
  Status release(const std::string& job_id) override;
  FetchReply fetch(const std::string& job_id, std::uint64_t offset,
                   std::size_t max_records) override;

  JobManagerCounters counters() const;
  // Every job the coordinator holds (until it is released), for the metrics.
  std::vector<JobProgress> progress() const;
  const JobJournal& journal() const { return *journal_; }

 private:
  struct Job {
    std::unique_ptr<ResultStream> results;
    std::unordered_set<std::string> seen;  // custom_ids of its lines, for duplicates
    std::unordered_set<std::string> done;  // custom_ids with a line in the stream
    std::int64_t next_line = 1;            // line number of its next input line
    std::int64_t total = 0;                // lines that are requests or errors
    std::int64_t completed = 0, failed = 0;
    std::int64_t pending = 0;
    bool final = false;
    bool cancelled = false;
    // Shared with its queued requests, so that those not started are not run.
    std::shared_ptr<std::atomic<bool>> cancel_flag = std::make_shared<std::atomic<bool>>(false);
  };
  struct Finished {
    std::string job_id;
    std::string custom_id;
    ResultRecord record;
  };

  JobManager(JobManagerOptions options, RequestPreparer preparer, Channel<EngineRequest>& requests,
             std::unique_ptr<JobJournal> journal);
  Status resume();
  Expected<Job*> open_job(const std::string& job_id);
  // Judges and queues `lines` (the job's next ones); error lines go to `errors`.
  void take_lines(const std::string& job_id, Job& job, const std::vector<std::string>& lines,
                  std::vector<Finished>& errors);
  void completion_loop();
  // Writes, syncs and journals finished lines.
  Status write(std::vector<Finished> batch);
  Finished to_line(const std::string& job_id, const EngineResult& result) const;
  std::string state_of(const Job& job) const;
  // Rewrites the journal to what live_ needs once it has grown enough (as jobs finish
  // and are released). Called with mutex_ held.
  void compact_if_due();

  JobManagerOptions options_;
  RequestPreparer preparer_;
  Channel<EngineRequest>& requests_;
  std::unique_ptr<JobJournal> journal_;

  std::atomic<std::int64_t> leases_{0};
  mutable std::mutex mutex_;  // everything below
  JournalState live_;         // what the journal holds, for compaction
  std::map<std::string, Job> jobs_;
  struct KeyOwner {
    std::string job_id;
    std::string custom_id;
  };
  std::map<std::uint64_t, KeyOwner> keys_;
  std::uint64_t next_key_ = 0;
  std::int64_t pending_ = 0;
  JobManagerCounters counters_;
  Status failure_;  // a write or journal failure: the coordinator must stop

  struct Lease {
    std::uint64_t key = 0;
    std::uint64_t epoch = 0;
  };
  using Completion = std::variant<EngineResult, Lease>;
  Channel<Completion> completions_;
  std::thread completion_thread_;
  std::function<void(const std::string&)> on_new_results_;
  std::function<void()> on_failure_;
};

}  // namespace conveyor
