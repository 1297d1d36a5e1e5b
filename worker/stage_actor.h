// StageActor: the executor of one pipeline stage on its own thread. Plans arrive in
// its inbox in step order; for each, it takes the previous stage's activations from
// its input channel (none on the first stage), runs its layers, and passes the
// hidden states on, or on the last stage reports the sampled tokens. Stopping
// drains: what is in the inbox is run first.
#pragma once

#include <memory>
#include <thread>

#include "common/channel.h"
#include "worker/activation_channel.h"
#include "worker/executor.h"
#include "worker/step_plan.h"

namespace conveyor {

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
  void submit(std::shared_ptr<const StepPlan> plan) { inbox_.send(std::move(plan)); }
  // Finishes the plans already submitted, then joins the thread.
  void stop();

 private:
  void loop();
  Status run_one(const StepPlan& plan);

  std::unique_ptr<Executor> executor_;
  ActivationChannel* input_;
  ActivationChannel* output_;
  Channel<StepOutput>& results_;
  Channel<std::shared_ptr<const StepPlan>> inbox_;
  std::thread thread_;
};

}  // namespace conveyor
