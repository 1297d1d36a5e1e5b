#include "coordinator/batch_job.h"

#include <atomic>

#include "coordinator/batch/resume.h"
#include "coordinator/progress.h"
#include "coordinator/sink.h"

namespace conveyor {

std::filesystem::path default_errors_path(const std::filesystem::path& output) {
  std::filesystem::path errors = output;
  errors.replace_filename(output.stem().string() + ".errors.jsonl");
  return errors;
}

BatchJobSummary run_batch_job(SchedulerActor& scheduler, const BatchJobOptions& options,
                              std::shared_ptr<const Tokenizer> tokenizer,
                              std::optional<ChatTemplate> chat) {
  const auto started = SteadyClock::now();
  Expected<ResumeState> resume = scan_for_resume(options.output, options.errors);
  if (!resume.ok()) throw Error(resume.status().code(), resume.status().message());
  BatchJobSummary summary;
  summary.resumed_results = resume->results;
  summary.resumed_errors = resume->errors;
  summary.repaired_bytes = resume->repaired_bytes;

  Expected<std::unique_ptr<Sink>> opened =
      Sink::open({options.output, options.errors, options.meta, tokenizer});
  if (!opened.ok()) throw Error(opened.status().code(), opened.status().message());
  Sink& sink = **opened;

  FileIntake intake(options.input, options.intake, tokenizer, std::move(chat),
                    std::move(resume->finished));
  ProgressReporter progress(options.progress, options.progress_interval_seconds);
  std::atomic<std::int64_t> generated{0};
  const auto snapshot = [&] {
    ProgressSnapshot s;
    s.done = sink.results();
    s.failed = sink.errors();
    s.total = intake.reading_done() ? intake.lines() : -1;
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
