#include "worker/stage_actor.h"

#include <exception>
#include <string>

namespace conveyor {

StageActor::StageActor(std::unique_ptr<Executor> executor, ActivationChannel* input,
                       ActivationChannel* output, Channel<StepOutput>& results)
    : executor_(std::move(executor)), input_(input), output_(output), results_(results) {
  thread_ = std::thread([this] { loop(); });
}

StageActor::~StageActor() {
  stop();
}

void StageActor::stop() {
  inbox_.close();
  if (thread_.joinable()) thread_.join();
}

void StageActor::loop() {
  while (auto plan = inbox_.receive()) {
    Status status;
    try {
      status = run_one(**plan);
    } catch (const Error& e) {
      status = e.status();
    } catch (const std::exception& e) {
      status = Status(ErrorCode::kInternal, e.what());
    }
    if (!status.ok()) {
      const std::string where = "stage of layers " + std::to_string(executor_->layers().begin) +
                                "-" + std::to_string(executor_->layers().end - 1);
      results_.send(
          StepOutput{(*plan)->step, Status(status.code(), where + ": " + status.message()), {}});
      // The pipeline cannot go on past a failed step: later stages would wait for
      // activations that never come. Closing the output wakes them.
      if (output_ != nullptr) output_->close();
      return;
    }
  }
}

Status StageActor::run_one(const StepPlan& plan) {
  Activations in;
  if (input_ != nullptr) {
    Expected<Activations> received = input_->receive();
    if (!received.ok()) return received.status();
    in = std::move(received).value();
    if (in.step != plan.step) {
      return Status(ErrorCode::kInternal, "activations of step " + std::to_string(in.step) +
                                              " arrived for step " + std::to_string(plan.step));
    }
  }
  StageResult result = executor_->run(plan, in.hidden);
  if (output_ != nullptr) return output_->send(Activations{plan.step, std::move(result.hidden)});
  results_.send(StepOutput{plan.step, {}, std::move(result.samples)});
  return {};
}

}  // namespace conveyor
