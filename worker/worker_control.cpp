#include "worker/worker_control.h"

namespace conveyor {

WorkerControl::WorkerControl(std::unique_ptr<Backend> backend) : backend_(std::move(backend)) {}

WorkerControl::~WorkerControl() {
  unload_stage();
}

StageActor& WorkerControl::load_stage(const ModelSource& source, const StageAssignment& assignment,
                                      ActivationChannel* input, ActivationChannel* output,
                                      Channel<StepOutput>& results, WeightBudget weight_budget) {
  unload_stage();
  auto executor = std::make_unique<Executor>(*backend_, source, assignment.layers, assignment.kv,
                                             weight_budget);
  stage_ = std::make_unique<StageActor>(std::move(executor), input, output, results);
  return *stage_;
}

void WorkerControl::unload_stage() {
  if (stage_) stage_->stop();
  stage_.reset();
}

}  // namespace conveyor
