// A batch file job: the coordinator's intake, scheduler and sink actors wired
// together for one input file, with progress on stderr. Rerunning the same job skips
// every custom_id already in the output or error file (resume).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>

#include "common/config/run_config.h"
#include "common/tokenizer/chat_template.h"
#include "common/tokenizer/tokenizer.h"
#include "coordinator/batch/result_line.h"
#include "coordinator/intake.h"
#include "coordinator/scheduler_actor.h"

namespace conveyor {

struct BatchJobOptions {
  std::filesystem::path input;
  std::filesystem::path output;
  std::filesystem::path errors;
  IntakeOptions intake;
  ResultMeta meta;  // the model name written in results
  ProgressMode progress = ProgressMode::kAuto;
  double progress_interval_seconds = 5.0;
  std::size_t request_queue = 256;  // tokenised requests read ahead of the scheduler
  // The KV block size to order the file's requests by their prompts' prefixes, so that
  // those sharing one run together (coordinator/prefix_order.h); 0 keeps file order.
  // Acts only on a regular file (a pipe keeps file order).
  std::int64_t prefix_order_block_size = 0;
};

struct BatchJobSummary {
  std::int64_t lines = 0;            // requests and bad lines this run handled
  std::int64_t results = 0;          // lines written to the output file this run
  std::int64_t errors = 0;           // lines written to the error file this run
  std::int64_t resumed_results = 0;  // already in the files from earlier runs
  std::int64_t resumed_errors = 0;
  std::int64_t repaired_bytes = 0;  // a cut last line removed before resuming
  double seconds = 0;
  EngineStats engine;

  bool any_failed() const { return errors + resumed_errors > 0; }
};

// The lines intake will answer (all but blank ones): a first pass for progress
// totals; -1 for what is not a regular file (a pipe cannot be read twice).
std::int64_t count_request_lines(const std::filesystem::path& file,
                                 const RequestLineLimits& limits);

// The error file's default path: beside the output, "<stem>.errors.jsonl".
std::filesystem::path default_errors_path(const std::filesystem::path& output);

// Runs the job to the end. Throws Error when it cannot run or cannot go on: the input
// cannot be read, an output file is not one of ours or cannot be written, a step
// fails on the backend. Whatever was written stays, and a rerun resumes from it.
BatchJobSummary run_batch_job(SchedulerActor& scheduler, const BatchJobOptions& options,
                              std::shared_ptr<const Tokenizer> tokenizer,
                              std::optional<ChatTemplate> chat);

}  // namespace conveyor
