// Sink: the actor that writes a job's terminal lines. On its own thread it appends
// one line per request as soon as it finishes: a result to the output file, a
// failure to the error file. Each line goes out in one write, so a killed process
// leaves at most a cut last line, which resume repairs.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <variant>

#include "common/channel.h"
#include "common/tokenizer/tokenizer.h"
#include "coordinator/batch/jsonl_appender.h"
#include "coordinator/batch/result_line.h"
#include "coordinator/scheduler_actor.h"

namespace conveyor {

using SinkItem = std::variant<RequestError, EngineResult>;

struct SinkOptions {
  std::filesystem::path output;
  std::filesystem::path errors;
  ResultMeta meta;
  std::shared_ptr<const Tokenizer> tokenizer;  // for log-prob token texts; may be null
};

class Sink {
 public:
  // Opens both files for appending (creating them). kIo naming the file on failure.
  static Expected<std::unique_ptr<Sink>> open(SinkOptions options);
  ~Sink();  // stop()

  // Called after every line written, on the sink's thread.
  void start(std::function<void()> on_line = {});
  // Thread-safe. False once stopped.
  bool send(SinkItem item) { return inbox_.send(std::move(item)); }
  // Writes what is queued, syncs both files to disk and joins the thread.
  Status stop();
  // The first write error, if any: then nothing more is written.
  Status status() const;

  std::int64_t results() const { return results_.load(); }
  std::int64_t errors() const { return errors_.load(); }
  std::int64_t generated_tokens() const { return generated_tokens_.load(); }

 private:
  Sink(SinkOptions options, JsonlAppender output, JsonlAppender errors);
  void write(const SinkItem& item);

  SinkOptions options_;
  JsonlAppender output_;
  JsonlAppender errors_file_;
  Channel<SinkItem> inbox_;
  std::thread thread_;
  mutable std::mutex status_mutex_;
  Status status_;
  std::atomic<std::int64_t> results_{0};
  std::atomic<std::int64_t> errors_{0};
  std::atomic<std::int64_t> generated_tokens_{0};
};

// The error line of a request the engine refused (kOutOfRange: context length).
RequestError engine_error(const BatchRequest& request, const Status& status);

// A finished request's terminal line, ending in '\n': its result line, or its error
// line when the engine refused it. `tokenizer` gives log-prob token texts; may be null.
struct TerminalLine {
  bool error = false;
  std::string line;
};
TerminalLine terminal_line(const EngineResult& result, const ResultMeta& meta,
                           const Tokenizer* tokenizer);

}  // namespace conveyor
