// WorkerControl: a worker's control actor. It owns the worker's backend, loads the
// stage the planner assigns (the weights of a layer range and K/V storage for them)
// and starts the stage's executor actor; unloading drains that actor first. In a
// cluster it also registers the worker and sends heartbeats; in one process the
// coordinator calls it directly.
#pragma once

#include <memory>

#include "common/channel.h"
#include "common/model_source.h"
#include "kernels/backend.h"
#include "worker/activation_channel.h"
#include "worker/executor.h"
#include "worker/stage_actor.h"
#include "worker/step_plan.h"
#include "worker/weight_budget.h"

namespace conveyor {

struct StageAssignment {
  LayerRange layers;
  KvGeometry kv;
};

class WorkerControl {
 public:
  explicit WorkerControl(std::unique_ptr<Backend> backend);
  ~WorkerControl();  // unload_stage()
  WorkerControl(const WorkerControl&) = delete;
  WorkerControl& operator=(const WorkerControl&) = delete;

  const Backend& backend() const { return *backend_; }

  // Loads the assigned layers of `source` (which must outlive the stage) and starts
  // the stage actor between `input` (null on the first stage) and `output` (null on
  // the last). A loaded stage is unloaded first. Layers beyond `weight_budget` stream
  // in (WeightStore). Throws Error when the weights or the K/V storage do not load; the
  // worker then holds no stage.
  StageActor& load_stage(const ModelSource& source, const StageAssignment& assignment,
                         ActivationChannel* input, ActivationChannel* output,
                         Channel<StepOutput>& results, WeightBudget weight_budget = {});
  // Finishes the plans already submitted to the stage, then frees it.
  void unload_stage();

  // Null when no stage is loaded.
  StageActor* stage() { return stage_.get(); }
  const StageActor* stage() const { return stage_.get(); }

 private:
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<StageActor> stage_;
};

}  // namespace conveyor
