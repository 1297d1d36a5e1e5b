#include "coordinator/cluster/remote_pipeline.h"

#include "worker/node/control_codec.h"
#include "worker/step_codec.h"

namespace conveyor {

RemotePipeline::RemotePipeline(WorkerHub& hub, std::uint64_t epoch, std::vector<std::string> stages)
    : hub_(hub), epoch_(epoch), stages_(std::move(stages)) {}

void RemotePipeline::submit(std::shared_ptr<const StepPlan> plan) {
  if (lost_.load()) return;  // next_result() says why
  const std::vector<std::uint8_t> message =
      encode_control(StepMessage{epoch_, encode_step_plan(*plan)});
  for (const std::string& stage : stages_)
    hub_.send_bytes(stage, message);
}

StepOutput RemotePipeline::next_result() {
  if (auto out = results_.receive()) return std::move(*out);
  std::lock_guard lock(mutex_);
  return StepOutput{0, Status(ErrorCode::kUnavailable, "pipeline replica lost: " + why_), {}};
}

void RemotePipeline::deliver(StepOutput output) {
  if (!output.status.ok()) {
    lose("a step failed on a stage: " + output.status.to_string());
    return;
  }
  results_.send(std::move(output));
}

void RemotePipeline::lose(const std::string& why) {
  if (lost_.exchange(true)) return;
  {
    std::lock_guard lock(mutex_);
    why_ = why;
  }
  // Results already delivered stay readable; after them, next_result() reports the loss.
  results_.close();
}

}  // namespace conveyor
