// A JobManager on a scratch journal directory, with the test as its engine: requests
// are taken from the channel the manager feeds and answered with complete(). Prompts
// are token ids, so no tokenizer or model is needed.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/channel.h"
#include "coordinator/cluster/job_manager.h"
#include "tests/temp_dir.h"

namespace conveyor::testing {

// Long enough never to fail a healthy run, short enough to fail a hung one quickly.
inline constexpr std::chrono::seconds kWaitLimit{5};

// A /v1/completions line with its prompt as token ids.
inline std::string completion_line(const std::string& custom_id) {
  return R"({"custom_id":")" + custom_id +
         R"(","method":"POST","url":"/v1/completions","body":{"prompt":[1,2,3],"max_tokens":4}})";
}

inline std::vector<std::string> completion_lines(const std::string& prefix, int count) {
  std::vector<std::string> lines;
  for (int i = 0; i < count; ++i)
    lines.push_back(completion_line(prefix + std::to_string(i)));
  return lines;
}

inline SubmitChunk chunk_of(const std::string& job_id, std::uint32_t number, bool final,
                            std::vector<std::string> lines) {
  SubmitChunk chunk;
  chunk.job_id = job_id;
  chunk.chunk = number;
  chunk.final = final;
  chunk.lines = std::move(lines);
  chunk.producer = "00ff";
  return chunk;
}

// The engine's answer to `request`: OK with one choice, or the refusal `status`.
inline EngineResult answer(const EngineRequest& request, Status status = {},
                           const std::string& text = "out") {
  EngineResult result;
  result.key = request.key;
  result.origin = request.origin;
  result.status = std::move(status);
  if (result.status.ok()) {
    result.prompt_tokens = static_cast<std::int64_t>(request.prompt.size());
    EngineChoice choice;
    choice.tokens = {7, 8};
    choice.text = text;
    choice.finish_reason = FinishReason::kLength;
    result.choices.push_back(std::move(choice));
  }
  return result;
}

inline nlohmann::json parse_line(const ResultRecord& record) {
  return nlohmann::json::parse(record.line);
}

inline std::vector<std::string> custom_ids(const std::vector<ResultRecord>& records) {
  std::vector<std::string> ids;
  for (const ResultRecord& r : records)
    ids.push_back(custom_id_of(r.line));
  return ids;
}

class JobManagerHarness {
 public:
  explicit JobManagerHarness(std::int64_t queue_limit = 100000) : queue_limit_(queue_limit) {
    open();
  }
  ~JobManagerHarness() { manager_.reset(); }

  JobManager& manager() { return *manager_; }
  Channel<EngineRequest>& requests() { return *requests_; }
  const std::filesystem::path& dir() const { return dir_.path(); }
  std::filesystem::path result_file(const std::string& job_id) const {
    return dir_.path() / "results" / (job_id + ".jsonl");
  }

  // Opens (or reopens) the manager on the same directory with a fresh request channel,
  // and starts its completion thread.
  void open() {
    manager_.reset();
    requests_ = std::make_unique<Channel<EngineRequest>>();
    JobManagerOptions options;
    options.dir = dir_.path();
    options.queue_limit = queue_limit_;
    options.meta.model = "test-model";
    RequestPreparer preparer(IntakeOptions{}, nullptr, std::nullopt);
    auto manager = JobManager::open(std::move(options), std::move(preparer), *requests_);
    REQUIRE_MESSAGE(manager.ok(), manager.status().to_string());
    manager_ = std::move(manager).value();
    manager_->start([](const std::string&) {});
  }

  // Stops and destroys the manager: what a crash leaves once the journal is durable.
  void close() { manager_.reset(); }

  // The next `count` queued requests (each waited for at most kWaitLimit).
  std::vector<EngineRequest> take(std::size_t count) {
    std::vector<EngineRequest> taken;
    for (std::size_t i = 0; i < count; ++i) {
      std::optional<EngineRequest> request = requests_->receive_for(kWaitLimit);
      REQUIRE_MESSAGE(request.has_value(), "request " << i << " of " << count << " never came");
      taken.push_back(std::move(*request));
    }
    return taken;
  }

  // Fetches the job from `offset` until it has at least `count` records.
  FetchReply wait_for_records(const std::string& job_id, std::size_t count,
                              std::uint64_t offset = 0) {
    const auto deadline = std::chrono::steady_clock::now() + kWaitLimit;
    while (true) {
      FetchReply reply = manager_->fetch(job_id, offset, 1000);
      if (reply.records.size() >= count) return reply;
      REQUIRE_MESSAGE(
          std::chrono::steady_clock::now() < deadline,
          "job " << job_id << " has " << reply.records.size() << " of " << count << " records");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  // Waits until the manager has no request accepted and unfinished.
  void wait_until_idle() {
    const auto deadline = std::chrono::steady_clock::now() + kWaitLimit;
    while (manager_->counters().pending != 0) {
      REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                      manager_->counters().pending << " requests still pending");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

 private:
  TempDir dir_;
  std::int64_t queue_limit_;
  std::unique_ptr<Channel<EngineRequest>> requests_;
  std::unique_ptr<JobManager> manager_;
};

}  // namespace conveyor::testing
