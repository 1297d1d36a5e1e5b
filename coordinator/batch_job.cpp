#include "coordinator/batch_job.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>

#include "coordinator/batch/file_lock.h"
#include "coordinator/batch/line_reader.h"
#include "coordinator/batch/request_line.h"
#include "coordinator/batch/resume.h"
#include "coordinator/progress.h"
#include "coordinator/sink.h"

namespace conveyor {

std::int64_t count_request_lines(const std::filesystem::path& file,
                                 const RequestLineLimits& limits) {
  // A pipe or a terminal would be drained by a first pass: only regular files.
  std::error_code error;
  if (!std::filesystem::is_regular_file(file, error)) return -1;
  std::FILE* in = std::fopen(file.c_str(), "rb");
  if (in == nullptr) return -1;
  // The same reader and blank rule as intake, so the count is the lines it answers.
  LineReader reader(in, limits.max_line_bytes);
  std::int64_t lines = 0;
  while (auto line = reader.next()) {
    if (line->length > limits.max_line_bytes || !is_blank_line(line->text)) ++lines;
  }
  std::fclose(in);
  return lines;
}

std::filesystem::path default_errors_path(const std::filesystem::path& output) {
  std::filesystem::path errors = output;
  errors.replace_filename(output.stem().string() + ".errors.jsonl");
  return errors;
}

BatchJobSummary run_batch_job(SchedulerActor& scheduler, const BatchJobOptions& options,
                              std::shared_ptr<const Tokenizer> tokenizer,
                              std::optional<ChatTemplate> chat) {
  const auto started = SteadyClock::now();
  // Before resume reads (and may repair) the files: they are this job's alone.
  Expected<FileLock> lock = FileLock::acquire(options.output);
  if (!lock.ok()) throw Error(lock.status().code(), lock.status().message());
  Expected<ResumeState> resume = scan_for_resume(options.output, options.errors);
  if (!resume.ok()) throw Error(resume.status().code(), resume.status().message());
  BatchJobSummary summary;
  summary.resumed_results = resume->results;
  summary.resumed_errors = resume->errors;
  summary.repaired_bytes = resume->repaired_bytes;

  // The total for progress before intake has read the whole file (it reads only as
  // fast as requests are admitted): the file's lines less those already finished.
  const std::int64_t file_lines = count_request_lines(options.input, options.intake.limits);
  const std::int64_t expected_lines =
      file_lines < 0 ? -1
                     : std::max<std::int64_t>(0, file_lines - resume->results - resume->errors);

  // Declared before the sink, whose thread calls back into them: they outlive it.
  ProgressReporter progress(options.progress, options.progress_interval_seconds);
  FileIntake intake(options.input, options.intake, tokenizer, std::move(chat),
                    std::move(resume->finished), options.prefix_order_block_size);
  std::atomic<std::int64_t> generated{0};
  Expected<std::unique_ptr<Sink>> opened =
      Sink::open({options.output, options.errors, options.meta, tokenizer});
  if (!opened.ok()) throw Error(opened.status().code(), opened.status().message());
  Sink& sink = **opened;
  const auto snapshot = [&] {
    ProgressSnapshot s;
    s.done = sink.results();
    s.failed = sink.errors();
    s.total = intake.reading_done() ? intake.lines() : expected_lines;
    s.generated_tokens = generated.load();
    s.elapsed_seconds = std::chrono::duration<double>(SteadyClock::now() - started).count();
    return s;
  };
  sink.start([&] { progress.update(snapshot()); });

  Channel<EngineRequest> requests(options.request_queue);
  intake.start(requests, [&](RequestError e) { sink.send(std::move(e)); });
  try {
    scheduler.run(
        requests,
        [&](EngineResult result) {
          sink.send(std::move(result));
          if (Status s = sink.status(); !s.ok()) throw Error(s.code(), s.message());
        },
        [&](const EngineStats& stats) {
          generated = stats.generated_tokens;
          progress.update(snapshot());
        });
  } catch (...) {
    // Stop reading; keep what the sink has queued.
    requests.close();
    (void)intake.join();
    (void)sink.stop();
    throw;
  }
  const Status read = intake.join();
  const Status written = sink.stop();
  generated = scheduler.stats().generated_tokens;
  progress.finish(snapshot());
  if (!read.ok()) throw Error(read.code(), read.message());
  if (!written.ok()) throw Error(written.code(), written.message());

  summary.lines = intake.lines();
  summary.results = sink.results();
  summary.errors = sink.errors();
  summary.engine = scheduler.stats();
  summary.seconds = std::chrono::duration<double>(SteadyClock::now() - started).count();
  return summary;
}

}  // namespace conveyor
