#include "worker/stage_actor.h"

#include <chrono>
#include <deque>
#include <exception>
#include <optional>
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
  // Plans taken from the inbox ahead of their turn: the executor reads ahead for the
  // next one while it runs the current one.
  std::deque<std::shared_ptr<const StepPlan>> ahead;
  while (true) {
    std::optional<std::shared_ptr<const StepPlan>> plan;
    if (!ahead.empty()) {
      plan = std::move(ahead.front());
      ahead.pop_front();
    } else {
      plan = inbox_.receive();
      if (!plan) break;
    }
    while (auto more = inbox_.try_receive())
      ahead.push_back(std::move(*more));
    Status status;
    try {
      status = run_one(**plan, ahead.empty() ? nullptr : ahead.front().get());
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
      {
        // The failure is reported; what stays in the inbox will not run, and is not
        // a stall.
        std::lock_guard lock(stats_mutex_);
        submitted_ = stats_.steps;
      }
      return;
    }
  }
}

void StageActor::submit(std::shared_ptr<const StepPlan> plan) {
  {
    std::lock_guard lock(stats_mutex_);
    // Work arriving at an idle stage starts its clock.
    if (submitted_ == stats_.steps) progress_ = std::chrono::steady_clock::now();
    ++submitted_;
  }
  inbox_.send(std::move(plan));
}

StageStats StageActor::stats() const {
  std::lock_guard lock(stats_mutex_);
  StageStats s = stats_;
  s.in_flight = submitted_ - stats_.steps;
  s.progress_time = progress_;
  s.stalled_seconds =
      s.in_flight == 0
          ? 0.0
          : std::chrono::duration<double>(std::chrono::steady_clock::now() - progress_).count();
  return s;
}

Status StageActor::run_one(const StepPlan& plan, const StepPlan* next) {
  using Clock = std::chrono::steady_clock;
  const auto seconds = [](Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  };
  const Clock::time_point waiting = Clock::now();
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
  const Clock::time_point computing = Clock::now();
  StageResult result = executor_->run(plan, in.hidden, next);
  const Clock::time_point done = Clock::now();
  const std::uint64_t bytes = result.hidden.size() * sizeof(float);
  {
    std::lock_guard lock(stats_mutex_);
    const double wait = seconds(waiting, computing);
    const double compute = seconds(computing, done);
    ++stats_.steps;
    stats_.compute_seconds += compute;
    stats_.input_wait_seconds += wait;
    if (output_ != nullptr) {
      stats_.activation_bytes_sent += bytes;
      if (stats_.transport.empty()) stats_.transport = output_->capabilities().transport;
    }
    progress_ = done;
    const double share = wait + compute > 0 ? wait / (wait + compute) : 0.0;
    stats_.bubble_ratio = stats_.steps == 1 ? share : 0.95 * stats_.bubble_ratio + 0.05 * share;
  }
  if (output_ != nullptr) return output_->send(Activations{plan.step, std::move(result.hidden)});
  results_.send(StepOutput{plan.step, {}, std::move(result.samples)});
  return {};
}

}  // namespace conveyor
