// `conveyor run`: a batch file in, results out, everything in this process (the
// embedded default). The coordinator's intake, scheduler and sink actors drive
// worker actors that hold the pipeline stages, joined by in-process channels.
#include <unistd.h>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "cli/engine_setup.h"
#include "cli/model_loading.h"
#include "common/config/run_config.h"
#include "common/config/size_parse.h"
#include "coordinator/batch_job.h"

namespace conveyor::cli {
namespace {

struct RunOptions {
  std::string config_file;
  std::string input;
  std::string output;
  EngineFlags engine;
};

// Every finished line is already on disk, each in one write, and a line cut by the
// signal is repaired by the next run: exiting at once loses only work in progress.
void on_signal(int signal) {
  static const char message[] =
      "\nstopped: finished lines are saved; run the same command again to resume\n";
  (void)!::write(STDERR_FILENO, message, sizeof(message) - 1);
  ::_exit(128 + signal);
}

int run_batch(const RunOptions& o) {
  RunConfig config = load_config_or_defaults(o.config_file);
  apply_engine_flags(o.engine, config);
  if (config.model.empty()) {
    fail(ErrorCode::kInvalidArgument, "no model: give --model or set `model` in the config");
  }
  if (!std::filesystem::exists(o.input)) {
    fail(ErrorCode::kNotFound, "input file " + o.input + " does not exist");
  }
  if (std::filesystem::is_directory(o.input)) {
    fail(ErrorCode::kInvalidArgument, "input " + o.input + " is a directory, not a JSONL file");
  }

  Engine engine = build_engine(config);
  BatchJobOptions job;
  job.input = o.input;
  job.output = o.output;
  job.errors = config.output.errors.empty() ? default_errors_path(job.output)
                                            : std::filesystem::path(config.output.errors);
  job.intake.limits.max_line_bytes = config.limits.max_line_bytes;
  job.intake.limits.default_max_tokens = config.limits.default_max_tokens;
  job.intake.limits.max_n = config.limits.max_n;
  job.intake.model_names = engine.model_names;
  job.intake.check_model_name = config.check_model_name;
  job.meta.model = engine.model_names.front();
  job.progress = config.output.progress;
  job.progress_interval_seconds = config.output.progress_interval_seconds;
  // Grouping by prefix helps only where the scheduler reuses cached prefix blocks.
  if (config.kv.prefix_caching && config.kv.prefix_ordering) {
    job.prefix_order_block_size = config.kv.block_size;
  }

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  const BatchJobSummary s = run_batch_job(*engine.scheduler, job, engine.tokenizer, engine.chat);

  if (s.resumed_results + s.resumed_errors > 0 || s.repaired_bytes > 0) {
    std::fprintf(stderr, "[run] resumed: %lld results and %lld errors were already written",
                 static_cast<long long>(s.resumed_results),
                 static_cast<long long>(s.resumed_errors));
    if (s.repaired_bytes > 0) {
      std::fprintf(stderr, "; a cut last line (%lld bytes) was removed and redone",
                   static_cast<long long>(s.repaired_bytes));
    }
    std::fprintf(stderr, "\n");
  }
  const double tok_s =
      s.seconds > 0 ? static_cast<double>(s.engine.generated_tokens) / s.seconds : 0.0;
  std::fprintf(stderr,
               "[run] %lld lines: %lld results, %lld errors | %lld prefill + %lld generated tokens "
               "in %.2f s: %.1f tok/s, %lld steps, %lld preemptions (%lld swapped to host, %lld to "
               "disk), %lld prompt tokens reused from the prefix cache\n"
               "[run] output: %s | errors: %s\n",
               static_cast<long long>(s.lines), static_cast<long long>(s.results),
               static_cast<long long>(s.errors), static_cast<long long>(s.engine.prefill_tokens),
               static_cast<long long>(s.engine.generated_tokens), s.seconds, tok_s,
               static_cast<long long>(s.engine.steps), static_cast<long long>(s.engine.preemptions),
               static_cast<long long>(s.engine.swap_preemptions - s.engine.disk_swap_preemptions),
               static_cast<long long>(s.engine.disk_swap_preemptions),
               static_cast<long long>(s.engine.prefix_hit_tokens), job.output.c_str(),
               job.errors.c_str());
  return s.any_failed() ? 2 : 0;
}

}  // namespace

void register_run(CLI::App& app, CommandResult& result) {
  CLI::App* cmd = app.add_subcommand(
      "run", "Run a batch file (OpenAI Batch JSONL) and write one result line per request");
  auto o = std::make_shared<RunOptions>();
  cmd->add_option("-i,--input", o->input,
                  "input JSONL: OpenAI Batch lines or {prompt|messages} rows")
      ->required();
  cmd->add_option("-o,--output", o->output, "output JSONL (appended; a rerun resumes)")->required();
  cmd->add_option("-c,--config", o->config_file, "YAML config (see config/local.yaml)")
      ->envname("CONVEYOR_CONFIG");
  add_engine_flags(*cmd, o->engine);
  cmd->callback([&result, o] { result = [o] { return run_batch(*o); }; });
}

}  // namespace conveyor::cli
