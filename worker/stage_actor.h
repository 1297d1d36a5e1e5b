// StageActor: the executor of one pipeline stage on its own thread. Plans arrive in
// its inbox in step order; for each, it takes the previous stage's activations from
// its input channel (none on the first stage), runs its layers, and passes the
// hidden states on, or on the last stage reports the sampled tokens. Stopping
// drains: what is in the inbox is run first.
//
// A stage that is the whole pipeline, given more than one micro-batch at a time, starts
// the next plan while the device still runs the current one, so that the device does
// not wait for the host between steps; results still go out in step order.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/channel.h"
#include "worker/activation_channel.h"
#include "worker/executor.h"
#include "worker/step_plan.h"

namespace conveyor {

// What a stage has done, for its metrics; read from any thread.
struct StageStats {
  std::uint64_t steps = 0;
  // Running its layers: starting each step and finishing it. A stage alone that
  // overlaps two micro-batches also waits for the next plan while the device runs; that
  // time counts nowhere.
  double compute_seconds = 0;
  // Of compute_seconds, the time spent waiting for the backend to end a step; the rest
  // is the host's: preparing steps, launching their ops, taking in their results.
  double device_wait_seconds = 0;
  double input_wait_seconds = 0;  // waiting for the previous stage's activations
  std::uint64_t activation_bytes_sent = 0;
  std::string transport;  // of the output channel; "" on the last stage
  // Of the recent steps (an exponential average over about 20), the share of each
  // step's time spent waiting for input rather than computing: the pipeline bubble as
  // this stage sees it. 0 on the first stage, which never waits for activations.
  double bubble_ratio = 0;
  // Plans submitted and not yet run, and how long the stage has gone without finishing
  // a step while some were waiting (0 when none waits): a wedged executor shows here.
  std::uint64_t in_flight = 0;
  double stalled_seconds = 0;
  // Since when (the last step done, or work arriving at an idle stage): a reader of an
  // older copy of these statistics can tell the stall as of its own now.
  std::chrono::steady_clock::time_point progress_time{};
};

// Adds `from`'s counters (steps, seconds, bytes) to `into`; the other fields are the
// caller's to choose.
inline void add_counters(StageStats& into, const StageStats& from) {
  into.steps += from.steps;
  into.compute_seconds += from.compute_seconds;
  into.device_wait_seconds += from.device_wait_seconds;
  into.input_wait_seconds += from.input_wait_seconds;
  into.activation_bytes_sent += from.activation_bytes_sent;
}

class StageActor {
 public:
  // `input` is null on the first stage, `output` on the last. A failed step is
  // reported on `results` by whichever stage failed, and that stage stops.
  StageActor(std::unique_ptr<Executor> executor, ActivationChannel* input,
             ActivationChannel* output, Channel<StepOutput>& results);
  ~StageActor();  // stop()
  StageActor(const StageActor&) = delete;
  StageActor& operator=(const StageActor&) = delete;

  const Executor& executor() const { return *executor_; }
  void submit(std::shared_ptr<const StepPlan> plan);
  // Finishes the plans already submitted, then joins the thread.
  void stop();
  StageStats stats() const;

 private:
  // A plan started on the executor, with the time it took so far.
  struct Started {
    std::shared_ptr<const StepPlan> plan;
    Activations input;
    std::unique_ptr<StartedRun> run;
    double wait_seconds = 0;   // for the input
    double start_seconds = 0;  // in Executor::start()
    int lane = 0;              // the backend's queue it runs on
  };

  void loop();
  // The next plan: from `ahead`, else from the inbox; null once the inbox is closed and
  // empty. With `running`, waits only while that run has not finished on the device.
  std::shared_ptr<const StepPlan> take(std::deque<std::shared_ptr<const StepPlan>>& ahead,
                                       const StartedRun* running);
  // `next`: the plan after this one, when it has arrived already.
  Status start_one(std::shared_ptr<const StepPlan> plan, const StepPlan* next,
                   std::deque<Started>& started);
  Status finish_one(Started& started);
  bool more_plans_in_flight() const;
  // Reports the step's failure, closes the output, and ends the stage's work.
  void report_failure(std::uint64_t step, const Status& status);

  std::unique_ptr<Executor> executor_;
  ActivationChannel* input_;
  ActivationChannel* output_;
  Channel<StepOutput>& results_;
  Channel<std::shared_ptr<const StepPlan>> inbox_;
  mutable std::mutex stats_mutex_;
  StageStats stats_;
  std::uint64_t submitted_ = 0;  // under stats_mutex_
  // The most plans submitted and not finished at once: a stage alone waits for the next
  // plan while one runs only when the scheduler keeps more than one in flight.
  std::uint64_t peak_in_flight_ = 0;                  // under stats_mutex_
  std::chrono::steady_clock::time_point progress_{};  // last step done, or work arriving
  std::thread thread_;
};

}  // namespace conveyor
