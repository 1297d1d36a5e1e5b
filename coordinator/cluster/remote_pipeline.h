// RemotePipeline: a pipeline replica whose stages are worker processes. A step plan
// is encoded once and sent to every stage's worker (each runs its layers for every
// sequence of the step, taking activations from the previous stage over UCX); the
// last stage's sampled tokens come back through the worker hub. When a worker of the
// replica is lost, the pipeline is lost: every later result is kUnavailable, which
// makes the scheduler actor hand its requests back for another replica.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "common/channel.h"
#include "coordinator/cluster/worker_hub.h"
#include "coordinator/step_runner.h"

namespace conveyor {

class RemotePipeline final : public StepRunner {
 public:
  // `stages`: the routing ids of the stage workers, first stage first.
  RemotePipeline(WorkerHub& hub, std::uint64_t epoch, std::vector<std::string> stages);

  int depth() const override { return static_cast<int>(stages_.size()); }
  void submit(std::shared_ptr<const StepPlan> plan) override;
  StepOutput next_result() override;

  std::uint64_t epoch() const { return epoch_; }
  // From the hub thread: a step's result; a failed step loses the pipeline.
  void deliver(StepOutput output);
  // From the hub thread: a stage worker is gone (or failed); idempotent.
  void lose(const std::string& why);
  bool lost() const override { return lost_.load(); }

 private:
  WorkerHub& hub_;
  const std::uint64_t epoch_;
  const std::vector<std::string> stages_;
  Channel<StepOutput> results_;
  std::atomic<bool> lost_{false};
  std::mutex mutex_;
  std::string why_;
};

}  // namespace conveyor
