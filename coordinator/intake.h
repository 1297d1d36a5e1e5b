// FileIntake: the intake actor for a batch file. On its own thread it reads the
// input line by line, judges each line on its own (format, duplicates, model name),
// tokenises the good ones with the model's chat template, and sends them to the
// scheduler, which checks them against the model (vocabulary, context length) as it
// does every request; each bad line becomes an error for the sink. Lines already finished in an
// earlier run (resume) are skipped. The request channel is bounded, so a large file is read only as
// fast as it is generated.
//
// With prefix ordering (a block size given, and the input a regular file that can be
// read twice), a first pass judges the whole file in file order, answers its bad lines
// at once, and orders the requests so that prompts sharing leading KV blocks run
// together (coordinator/prefix_order.h); the second pass reads the request lines at
// their offsets in that order. A pipe keeps file order. The first request is sent once
// the first pass has judged (and tokenised) the whole file.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "common/channel.h"
#include "common/status.h"
#include "common/tokenizer/chat_template.h"
#include "common/tokenizer/tokenizer.h"
#include "coordinator/batch/request_line.h"
#include "coordinator/request_preparer.h"
#include "coordinator/scheduler_actor.h"

namespace conveyor {

class FileIntake {
 public:
  // `tokenizer` and `chat` may be null: then only prompts given as token ids are
  // accepted. `finished` holds the custom_ids to skip. `prefix_block_size`: the KV
  // block size to order requests by their prompts' prefixes; 0 keeps file order.
  FileIntake(std::filesystem::path input, IntakeOptions options,
             std::shared_ptr<const Tokenizer> tokenizer, std::optional<ChatTemplate> chat,
             std::unordered_set<std::string> finished, std::int64_t prefix_block_size = 0);
  ~FileIntake();
  FileIntake(const FileIntake&) = delete;
  FileIntake& operator=(const FileIntake&) = delete;

  // Bad lines: each becomes an error line (called on the intake thread).
  using ErrorCallback = std::function<void(RequestError)>;

  // Starts reading on its own thread; closes `requests` at the end of the file.
  void start(Channel<EngineRequest>& requests, ErrorCallback on_error);
  // Waits for the end of the file; not OK when the file could not be read.
  Status join();

  // Lines that are requests or errors (not blank, not skipped); valid once
  // reading_done().
  std::int64_t lines() const { return lines_.load(); }
  std::int64_t skipped() const { return skipped_.load(); }
  bool reading_done() const { return done_.load(); }

 private:
  void read_all(Channel<EngineRequest>& requests, const ErrorCallback& on_error);
  using InputFile = std::unique_ptr<std::FILE, int (*)(std::FILE*)>;
  // The input, opened for reading; null (status_ set) when it cannot be.
  InputFile open_input();
  void read_in_file_order(Channel<EngineRequest>& requests, const ErrorCallback& on_error);
  void read_by_prefix(Channel<EngineRequest>& requests, const ErrorCallback& on_error);
  // Counts a judged line and hands it on; false once the job is stopping.
  bool deliver(JudgedLine judged, Channel<EngineRequest>& requests, const ErrorCallback& on_error);
  bool is_finished(const std::string& id) const { return finished_.count(id) != 0; }

  std::filesystem::path input_;
  std::int64_t prefix_block_size_;
  std::uint64_t next_key_ = 0;
  RequestPreparer preparer_;
  std::unordered_set<std::string> finished_;
  std::unordered_set<std::string> seen_;
  std::thread thread_;
  Status status_;
  std::atomic<std::int64_t> lines_{0};
  std::atomic<std::int64_t> skipped_{0};
  std::atomic<bool> done_{false};
};

}  // namespace conveyor
