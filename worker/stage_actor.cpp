#include "worker/stage_actor.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <exception>
#include <optional>
#include <string>

namespace conveyor {

namespace {

// How many plans a stage that is the whole pipeline keeps started at once: the one the
// device runs and the one queued behind it.
constexpr std::size_t kMaxStarted = 2;

// Runs `body`, turning what it throws into a Status.
template <typename Body>
Status guarded(Body&& body) {
  try {
    return body();
  } catch (const Error& e) {
    return e.status();
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, e.what());
  }
}

}  // namespace

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
  std::deque<Started> started;  // in step order
  // Only a stage alone starts a plan before the last one finished: its plans are
  // micro-batches of different sequences, with no activations to wait for in between.
  const bool overlap = input_ == nullptr && output_ == nullptr;
  while (true) {
    std::shared_ptr<const StepPlan> plan;
    if (started.empty()) {
      plan = take(ahead, nullptr);
      if (!plan) break;
    } else if (overlap && started.size() < kMaxStarted && more_plans_in_flight()) {
      plan = take(ahead, started.front().run.get());
    }
    if (plan) {
      while (auto more = inbox_.try_receive())
        ahead.push_back(std::move(*more));
      const std::uint64_t step = plan->step;
      const Status status =
          start_one(std::move(plan), ahead.empty() ? nullptr : ahead.front().get(), started);
      if (status.ok()) continue;
      // The steps started before it still report, in order.
      while (!started.empty()) {
        const Status earlier = finish_one(started.front());
        if (!earlier.ok()) {
          report_failure(started.front().plan->step, earlier);
          return;
        }
        started.pop_front();
      }
      report_failure(step, status);
      return;
    }
    const Status status = finish_one(started.front());
    if (!status.ok()) {
      report_failure(started.front().plan->step, status);
      return;
    }
    started.pop_front();
  }
}

std::shared_ptr<const StepPlan> StageActor::take(std::deque<std::shared_ptr<const StepPlan>>& ahead,
                                                 const StartedRun* running) {
  // A finished run goes out first: on a synchronous backend every run has finished by
  // the time it started, and its result lets the scheduler plan while the next runs.
  if (running != nullptr && running->ready()) return nullptr;
  if (!ahead.empty()) {
    std::shared_ptr<const StepPlan> plan = std::move(ahead.front());
    ahead.pop_front();
    return plan;
  }
  if (running == nullptr) return inbox_.receive().value_or(nullptr);
  // The scheduler answers a result within a millisecond or so, and a step on the device
  // takes tens: look often, so that the next plan starts soon after it comes.
  while (true) {
    if (auto plan = inbox_.receive_for(std::chrono::microseconds(100))) return std::move(*plan);
    if (running->ready() || inbox_.finished()) return nullptr;
  }
}

bool StageActor::more_plans_in_flight() const {
  std::lock_guard lock(stats_mutex_);
  return peak_in_flight_ > 1;
}

void StageActor::report_failure(std::uint64_t step, const Status& status) {
  const std::string where = "stage of layers " + std::to_string(executor_->layers().begin) + "-" +
                            std::to_string(executor_->layers().end - 1);
  results_.send(StepOutput{step, Status(status.code(), where + ": " + status.message()), {}});
  // The pipeline cannot go on past a failed step: later stages would wait for
  // activations that never come. Closing the output wakes them.
  if (output_ != nullptr) output_->close();
  // The failure is reported; what stays in the inbox will not run, and is not a stall.
  std::lock_guard lock(stats_mutex_);
  submitted_ = stats_.steps;
}

void StageActor::submit(std::shared_ptr<const StepPlan> plan) {
  {
    std::lock_guard lock(stats_mutex_);
    // Work arriving at an idle stage starts its clock.
    if (submitted_ == stats_.steps) progress_ = std::chrono::steady_clock::now();
    ++submitted_;
    peak_in_flight_ = std::max(peak_in_flight_, submitted_ - stats_.steps);
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

Status StageActor::start_one(std::shared_ptr<const StepPlan> plan, const StepPlan* next,
                             std::deque<Started>& started) {
  using Clock = std::chrono::steady_clock;
  return guarded([&]() -> Status {
    Started s;
    s.plan = std::move(plan);
    const Clock::time_point waiting = Clock::now();
    if (input_ != nullptr) {
      Expected<Activations> received = input_->receive();
      if (!received.ok()) return received.status();
      s.input = std::move(received).value();
      if (s.input.step != s.plan->step) {
        return Status(ErrorCode::kInternal, "activations of step " + std::to_string(s.input.step) +
                                                " arrived for step " +
                                                std::to_string(s.plan->step));
      }
    }
    const Clock::time_point computing = Clock::now();
    // Two runs in flight take different lanes, where the backend has two: one's
    // attention may then run beside the other's products.
    if (executor_->lanes() > 1 && !started.empty()) s.lane = 1 - started.back().lane;
    s.run = executor_->start(*s.plan, s.input.hidden, next, s.lane);
    s.wait_seconds = std::chrono::duration<double>(computing - waiting).count();
    s.start_seconds = std::chrono::duration<double>(Clock::now() - computing).count();
    started.push_back(std::move(s));
    return {};
  });
}

Status StageActor::finish_one(Started& started) {
  using Clock = std::chrono::steady_clock;
  return guarded([&]() -> Status {
    const Clock::time_point finishing = Clock::now();
    started.run->wait();
    const Clock::time_point waited = Clock::now();
    StageResult result = executor_->finish(*started.run);
    const Clock::time_point done = Clock::now();
    const std::uint64_t bytes = result.hidden.size() * sizeof(float);
    {
      std::lock_guard lock(stats_mutex_);
      const double wait = started.wait_seconds;
      // The host's time in the step and the wait for the device's end of it.
      const double compute =
          started.start_seconds + std::chrono::duration<double>(done - finishing).count();
      ++stats_.steps;
      stats_.compute_seconds += compute;
      stats_.device_wait_seconds += std::chrono::duration<double>(waited - finishing).count();
      stats_.input_wait_seconds += wait;
      if (output_ != nullptr) {
        stats_.activation_bytes_sent += bytes;
        if (stats_.transport.empty()) stats_.transport = output_->capabilities().transport;
      }
      progress_ = done;
      const double share = wait + compute > 0 ? wait / (wait + compute) : 0.0;
      stats_.bubble_ratio = stats_.steps == 1 ? share : 0.95 * stats_.bubble_ratio + 0.05 * share;
    }
    const StepPlan& plan = *started.plan;
    if (output_ != nullptr) return output_->send(Activations{plan.step, std::move(result.hidden)});
    results_.send(StepOutput{plan.step, {}, std::move(result.samples)});
    return {};
  });
}

}  // namespace conveyor
