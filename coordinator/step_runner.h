// StepRunner: where the scheduler sends its step plans and gets the sampled tokens
// back: a pipeline replica, however its stages are wired (threads in this process,
// or worker processes over the network).
#pragma once

#include <memory>

#include "worker/step_plan.h"

namespace conveyor {

class StepRunner {
 public:
  virtual ~StepRunner() = default;
  // How many steps keep every stage busy (one per stage).
  virtual int depth() const = 0;
  // Queues a step; steps are run in the order submitted.
  virtual void submit(std::shared_ptr<const StepPlan> plan) = 0;
  // Blocks for the next finished (or failed) step, in submission order.
  virtual StepOutput next_result() = 0;
  // True once the runner can run nothing more (a remote replica whose worker was
  // lost): an idle scheduler actor then stops instead of taking more requests.
  virtual bool lost() const { return false; }
};

}  // namespace conveyor
