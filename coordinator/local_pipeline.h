// LocalPipeline: a pipeline replica whose stages are workers in this process: each a
// WorkerControl with its own backend (CPU or CUDA) and a stage actor on its own thread, joined
// by in-process activation channels. The embedded default of `conveyor run`; the same actors and
// plans as a cluster, wired without a network.
#pragma once

#include <memory>
#include <vector>

#include "common/channel.h"
#include "common/model_source.h"
#include "coordinator/step_runner.h"
#include "kernels/backend.h"
#include "worker/activation_channel.h"
#include "worker/platform/backend_factory.h"
#include "worker/worker_control.h"

namespace conveyor {

struct LocalPipelineOptions {
  std::int64_t stages = 1;
  // CPU: threads in all, shared out over the stages (0: every core). CUDA: the
  // memory fraction is shared out over the stages on the one device.
  BackendRequest backend{BackendKind::kCpu};
  KvGeometry kv;
  WeightBudget weight_budget;  // per stage, of that stage's weights
};

class LocalPipeline final : public StepRunner {
 public:
  // Loads every stage's weights and K/V storage. Throws Error on failure.
  LocalPipeline(const ModelSource& source, const LocalPipelineOptions& options);
  ~LocalPipeline() override;

  int depth() const override { return static_cast<int>(workers_.size()); }
  void submit(std::shared_ptr<const StepPlan> plan) override;
  // After a step has failed, the pipeline is stopped: its stage threads may have
  // exited, so every later call answers kUnavailable at once instead of waiting for
  // results that will never come.
  StepOutput next_result() override;

  std::vector<LayerRange> layer_ranges() const;
  std::string backend_name() const;
  // Each stage's statistics, first stage first; from any thread.
  std::vector<StageStats> stage_stats() const;
  // K/V blocks every stage holds (the fewest, where stages sized their caches
  // themselves).
  std::int64_t kv_blocks() const;
  std::uint64_t weight_bytes() const;
  // Layers streamed in under the weight budget, all stages together.
  std::int64_t streamed_layers() const;

 private:
  std::vector<std::unique_ptr<InProcessActivationChannel>> links_;
  Channel<StepOutput> results_;
  std::vector<std::unique_ptr<WorkerControl>> workers_;
  Status stopped_;  // set by the first failed step
};

}  // namespace conveyor
