// An in-memory JobService for the producer tests: counts how often each chunk is
// accepted, answers BUSY while its queue is at its limit, and holds result streams
// that a test appends to.
#pragma once

#include <algorithm>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "coordinator/producer/job_service.h"

namespace conveyor::testing {

class FakeJobService : public JobService {
 public:
  // queue_limit 0: never busy.
  explicit FakeJobService(std::size_t queue_limit = 0) : queue_limit_(queue_limit) {}

  SubmitReply submit(const SubmitChunk& chunk) override {
    std::lock_guard lock(mutex_);
    const auto key = std::make_pair(chunk.job_id, chunk.chunk);
    if (accepted_.contains(key)) {
      ++accepted_[key];  // counts attempts; accepted_once() checks the first stored it
      return {SubmitOutcome::kDuplicate, "", 0};
    }
    if (busy_ || (queue_limit_ > 0 && queue_.size() >= queue_limit_)) {
      return {SubmitOutcome::kBusy, "queue full", 5};
    }
    if (jobs_[chunk.job_id].cancelled) return {SubmitOutcome::kRejected, "job cancelled", 0};
    accepted_[key] = 1;
    ++accepted_total_;
    stored_[key] = chunk.lines;
    queue_.push_back(key);
    max_depth_ = std::max(max_depth_, queue_.size());
    Job& job = jobs_[chunk.job_id];
    job.chunks += 1;
    job.total += static_cast<std::int64_t>(chunk.lines.size());
    job.final_received = job.final_received || chunk.final;
    return {SubmitOutcome::kAccepted, "", 0};
  }

  JobStatusReply status(const std::string& job_id) override {
    std::lock_guard lock(mutex_);
    const auto it = jobs_.find(job_id);
    if (it == jobs_.end()) return {};
    const Job& j = it->second;
    JobStatusReply s;
    s.found = true;
    s.state = j.cancelled ? "cancelled" : j.done ? "finished" : "running";
    s.total = j.total;
    s.completed = static_cast<std::int64_t>(j.results.size());
    s.chunks = j.chunks;
    s.final_received = j.final_received;
    return s;
  }

  Status cancel(const std::string& job_id) override {
    std::lock_guard lock(mutex_);
    const auto it = jobs_.find(job_id);
    if (it == jobs_.end()) return Status(ErrorCode::kNotFound, "no job " + job_id);
    it->second.cancelled = true;
    return {};
  }

  Status release(const std::string& job_id) override {
    std::lock_guard lock(mutex_);
    if (jobs_.erase(job_id) == 0) return Status(ErrorCode::kNotFound, "no job " + job_id);
    return {};
  }

  FetchReply fetch(const std::string& job_id, std::uint64_t offset,
                   std::size_t max_records) override {
    std::lock_guard lock(mutex_);
    ++fetches_;
    const auto it = jobs_.find(job_id);
    if (it == jobs_.end()) return {};
    const Job& j = it->second;
    FetchReply f;
    f.found = true;
    for (std::uint64_t i = offset; i < j.results.size() && f.records.size() < max_records; ++i) {
      f.records.push_back(j.results[i]);
    }
    f.next_offset = offset + f.records.size();
    f.job_done = (j.done || j.cancelled) && f.next_offset >= j.results.size();
    f.total = j.total;
    f.completed = static_cast<std::int64_t>(j.results.size());
    return f;
  }

  // ---- test controls ----
  void add_result(const std::string& job_id, ResultRecord record, bool done = false) {
    std::lock_guard lock(mutex_);
    jobs_[job_id].results.push_back(std::move(record));
    jobs_[job_id].done = done;
  }
  void set_busy(bool busy) {
    std::lock_guard lock(mutex_);
    busy_ = busy;
  }
  // Takes one chunk off the queue (the scheduler consuming it); false when empty.
  bool drain_one() {
    std::lock_guard lock(mutex_);
    if (queue_.empty()) return false;
    queue_.pop_front();
    return true;
  }
  // How many times (job, chunk) was answered ACK or DUPLICATE; 0 if never accepted.
  int answers(const std::string& job_id, std::uint32_t chunk) const {
    std::lock_guard lock(mutex_);
    const auto it = accepted_.find({job_id, chunk});
    return it == accepted_.end() ? 0 : it->second;
  }
  std::vector<std::string> lines(const std::string& job_id, std::uint32_t chunk) const {
    std::lock_guard lock(mutex_);
    const auto it = stored_.find({job_id, chunk});
    return it == stored_.end() ? std::vector<std::string>{} : it->second;
  }
  std::size_t stored_chunks() const {
    std::lock_guard lock(mutex_);
    return stored_.size();
  }
  // kAccepted outcomes in all: equal to stored_chunks() when nothing was accepted twice.
  std::size_t accepted_total() const {
    std::lock_guard lock(mutex_);
    return accepted_total_;
  }
  std::size_t max_depth() const {
    std::lock_guard lock(mutex_);
    return max_depth_;
  }
  int fetches() const {
    std::lock_guard lock(mutex_);
    return fetches_;
  }

 private:
  struct Job {
    std::vector<ResultRecord> results;
    bool done = false;
    bool cancelled = false;
    std::uint32_t chunks = 0;
    std::int64_t total = 0;
    bool final_received = false;
  };
  using Key = std::pair<std::string, std::uint32_t>;

  const std::size_t queue_limit_;
  mutable std::mutex mutex_;
  std::map<std::string, Job> jobs_;
  std::map<Key, int> accepted_;
  std::map<Key, std::vector<std::string>> stored_;
  std::deque<Key> queue_;
  std::size_t max_depth_ = 0;
  std::size_t accepted_total_ = 0;
  bool busy_ = false;
  int fetches_ = 0;
};

}  // namespace conveyor::testing
