// SchedulerActor: the coordinator's engine loop for one pipeline replica. It takes
// tokenised requests from a channel, owns their sequences (tokens, stop conditions,
// output text), asks the Scheduler for steps, sends them as StepPlans to a
// StepRunner, keeping one step in flight per pipeline stage, and turns the sampled
// tokens that come back into finished results.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/channel.h"
#include "common/tokenizer/tokenizer.h"
#include "coordinator/batch/batch_request.h"
#include "coordinator/batch/result_line.h"
#include "coordinator/engine_metrics.h"
#include "coordinator/scheduler/scheduler.h"
#include "coordinator/step_runner.h"
#include "worker/sampling/finish_reason.h"
#include "worker/sampling/sampling_params.h"

namespace conveyor {

using SteadyClock = std::chrono::steady_clock;

// What a request had produced on a pipeline replica that was lost, so that another
// replica continues it: each unfinished choice is prefilled again from the prompt and
// its tokens so far (draws depend only on the seed and the position, so it goes on
// exactly as it would have), and finished choices are kept as they are.
struct RequestProgress {
  struct Choice {
    bool finished = false;
    std::vector<SampleResult> samples;  // unfinished: the tokens so far, with log-probs if asked
    ChoiceOutput output;                // finished: the final output
  };
  std::vector<Choice> choices;      // one per choice
  double first_token_seconds = -1;  // < 0: no token yet
};

struct EngineRequest {
  std::uint64_t key = 0;  // the caller's handle, returned with the result
  std::vector<std::int32_t> prompt;
  // A missing seed is drawn once when the request is added, so that a sequence
  // recomputed after preemption repeats its draws.
  SamplingParams sampling;
  std::int32_t n = 1;  // choices: independent sequences of the same prompt
  SteadyClock::time_point submitted = SteadyClock::now();
  // The input line it came from, handed back with the result for the output line;
  // null for requests that have none (benchmarks).
  std::shared_ptr<const BatchRequest> origin;
  // Set on a request handed back by a lost replica (with sampling.seed set to the
  // seed it ran with).
  std::shared_ptr<const RequestProgress> progress;
  std::int32_t hand_backs = 0;  // how many replicas lost it already
  // Set by the caller (a job cancelled): a request not yet started is answered
  // kCancelled instead of run.
  std::shared_ptr<const std::atomic<bool>> cancelled;
};

// One finished choice: its tokens (a final stop token included), the text without
// stop strings (empty without a tokenizer), why it ended, and log-probs when asked.
using EngineChoice = ChoiceOutput;

struct EngineResult {
  std::uint64_t key = 0;
  std::shared_ptr<const BatchRequest> origin;
  // Not OK when the request was refused (invalid parameters, too long for the
  // context or the KV cache); then there are no choices.
  Status status;
  std::int64_t prompt_tokens = 0;
  std::vector<EngineChoice> choices;
  double first_token_seconds = 0;  // from `submitted` to the first sampled token
  double latency_seconds = 0;      // from `submitted` to the last
};

struct EngineStats {
  std::int64_t steps = 0;
  std::int64_t prefill_tokens = 0;  // positions computed that were not decode inputs
  std::int64_t decode_tokens = 0;   // positions computed that fed a sampled token back
  std::int64_t generated_tokens = 0;
  std::int64_t preemptions = 0;            // both kinds
  std::int64_t swap_preemptions = 0;       // those that swapped their K/V to a tier
  std::int64_t disk_swap_preemptions = 0;  // of those, to the disk tier
  std::int64_t swapped_blocks = 0;         // K/V blocks moved out and back in, together
  // Prompt positions looked up in the prefix cache, and those found there (not
  // computed again).
  std::int64_t prefix_queried_tokens = 0;
  std::int64_t prefix_hit_tokens = 0;
  std::int64_t finished = 0;
  std::int64_t failed = 0;
  std::int64_t running = 0;
  std::int64_t waiting = 0;
  double seconds = 0;  // from run() to now (or to its end)
  // Each step's time from submission to its result, summed: with several stages in
  // flight at once, seconds / steps understates how long one step takes.
  double step_seconds = 0;
  // The actor's own time from a result's arrival to the next step's submission (taking in
  // the tokens, planning), summed over `host_intervals` of them: with one step in flight,
  // time the pipeline waits for the scheduler.
  double host_seconds = 0;
  std::int64_t host_intervals = 0;
};

struct SchedulerActorOptions {
  SchedulerConfig scheduler;
  // Steps in flight at once (0: the runner's depth, one per pipeline stage).
  std::int64_t micro_batches = 0;
  std::int64_t vocab_size = 0;
  std::int64_t context_limit = 0;     // positions the model takes
  std::vector<std::int64_t> eos_ids;  // the model's end-of-sequence tokens
  // Null: results carry ids only. Otherwise its end-of-turn tokens end a sequence too.
  std::shared_ptr<const Tokenizer> tokenizer;
  // Requests taken from the channel ahead of admission (0: twice max_sequences),
  // so that a large input is not held in memory at once.
  std::int64_t lookahead = 0;
  // Called with each request's key as the actor takes it from the channel (on the
  // actor's thread): who runs what, for a cluster's leases.
  std::function<void(std::uint64_t key)> on_take;
  // Null: no metrics. Otherwise updated as requests, tokens and steps go by.
  std::shared_ptr<EngineMetrics> metrics;
};

class SchedulerActor {
 public:
  SchedulerActor(StepRunner& runner, SchedulerActorOptions options);
  ~SchedulerActor();

  using ResultCallback = std::function<void(EngineResult)>;
  using StepCallback = std::function<void(const EngineStats&)>;
  // Output text as it is released (text that may begin a stop string is held back
  // until it is ruled out), for streaming; per request key and choice.
  using TextCallback =
      std::function<void(std::uint64_t key, std::int32_t choice, std::string_view text)>;

  // Runs until `requests` is closed and every request taken from it has a result.
  // Callbacks run on this thread. A failed step (a stage's backend error) or a
  // throwing callback ends the run with that exception: the steps already sent are
  // collected first (so the runner holds no stale result), and the requests still
  // running are dropped without a result; a rerun of the job redoes them. The actor
  // can then run again.
  void run(Channel<EngineRequest>& requests, const ResultCallback& on_result,
           const StepCallback& on_step = {}, const TextCallback& on_text = {});

  // A request handed back when the runner is lost (see run_until_lost).
  using HandBackCallback = std::function<void(EngineRequest)>;
  // As run(), except that when the run cannot go on (the runner is lost: a worker of
  // a remote pipeline died; or anything else failed), every request not finished is
  // handed to `on_hand_back` with its progress, and the call returns false instead of
  // throwing (lost_because() says why). True when `requests` was closed and
  // everything finished.
  bool run_until_lost(Channel<EngineRequest>& requests, const ResultCallback& on_result,
                      const HandBackCallback& on_hand_back, const StepCallback& on_step = {});

  const EngineStats& stats() const { return stats_; }
  // Why run_until_lost() last returned false.
  const Status& lost_because() const { return lost_because_; }

 private:
  struct Group;
  struct Sequence;

  void loop(Channel<EngineRequest>& requests, const ResultCallback& on_result,
            const StepCallback& on_step, const TextCallback& on_text);
  // After a failed run: waits for the steps in flight and forgets every sequence.
  void abandon();
  // Waits for the steps in flight, or for the runner to say it has stopped.
  void abandon_steps();
  // After the runner was lost: collects what it still answers, hands every request
  // back with its progress, and forgets them.
  void hand_back(const ResultCallback& on_result, const HandBackCallback& on_hand_back);
  // Rebuilds a choice's state from the tokens it produced elsewhere.
  void replay(Sequence& s, const std::vector<SampleResult>& samples);
  void add(EngineRequest request, const ResultCallback& on_result);
  Status validate(const EngineRequest& request) const;
  std::vector<BlockHash> prompt_block_hashes(std::span<const std::int32_t> prompt) const;
  // Moves the block tables out of `schedule`: in flight, only lengths are needed.
  std::shared_ptr<const StepPlan> plan_for(Schedule& schedule);
  void apply(const StepOutput& output, const ResultCallback& on_result,
             const TextCallback& on_text);
  // `replayed`: a token generated elsewhere (a lost replica), counted there: the
  // metrics leave it out.
  void accept(Sequence& s, const SampleResult& sample, const TextCallback& on_text,
              bool replayed = false);
  void finish_sequence(Sequence& s, const ResultCallback& on_result);
  // A choice could not be sampled: the whole request fails, alone.
  void fail_request(Sequence& s, const Status& status, const ResultCallback& on_result);
  // The sequence leaves; the last of its request's choices delivers the result.
  void retire(Sequence& s, const ResultCallback& on_result);
  // Counts a finished request in the metrics, by its first choice's finish reason.
  void record_finished(const Group& group);
  std::int64_t micro_batch_size() const;
  // Updates the scheduler's estimate of how fast a recompute would go from a step
  // that came back after `step_seconds`.
  void measure_recompute_rate(const Schedule& schedule, double step_seconds);
  std::int64_t depth() const;

  StepRunner& runner_;
  SchedulerActorOptions options_;
  Scheduler scheduler_;
  EngineStats stats_;
  SteadyClock::time_point started_;
  std::uint64_t next_step_ = 0;
  SequenceId next_sequence_ = 0;
  struct InFlight {
    Schedule schedule;
    SteadyClock::time_point submitted;
  };
  std::map<std::uint64_t, InFlight> in_flight_;  // by step number
  std::map<SequenceId, std::unique_ptr<Sequence>> sequences_;
  std::vector<SequenceId> released_;  // left since the last plan
  double recompute_rate_ = 0;         // positions per second, a moving average
  Status lost_because_;
};

}  // namespace conveyor
