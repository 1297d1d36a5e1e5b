#include "coordinator/local_pipeline.h"

#include <algorithm>
#include <thread>

#include "coordinator/stage_planner.h"

namespace conveyor {

LocalPipeline::LocalPipeline(const ModelSource& source, const LocalPipelineOptions& options) {
  const std::vector<LayerRange> ranges = split_layers(source.spec().num_layers, options.stages);
  const int cores = options.backend.threads > 0
                        ? options.backend.threads
                        : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const auto stages = static_cast<int>(ranges.size());
  BackendRequest request = options.backend;
  request.kind = resolve(request.kind);
  request.threads = std::max(1, cores / stages);
  request.gpu_memory_fraction /= stages;
  for (std::size_t s = 0; s + 1 < ranges.size(); ++s)
    links_.push_back(std::make_unique<InProcessActivationChannel>());
  for (std::size_t s = 0; s < ranges.size(); ++s) {
    workers_.push_back(std::make_unique<WorkerControl>(make_backend(request)));
    ActivationChannel* input = s == 0 ? nullptr : links_[s - 1].get();
    ActivationChannel* output = s + 1 == ranges.size() ? nullptr : links_[s].get();
    workers_.back()->load_stage(source, {ranges[s], options.kv}, input, output, results_,
                                options.weight_budget);
  }
}

LocalPipeline::~LocalPipeline() {
  // Closing the links first wakes a stage waiting for activations that a failed
  // stage will never send; then each worker drains its stage.
  for (auto& link : links_)
    link->close();
  for (auto& worker : workers_)
    worker->unload_stage();
}

void LocalPipeline::submit(std::shared_ptr<const StepPlan> plan) {
  if (!stopped_.ok()) return;  // next_result() says why
  for (auto& worker : workers_)
    worker->stage()->submit(plan);
}

StepOutput LocalPipeline::next_result() {
  if (!stopped_.ok()) return StepOutput{0, stopped_, {}};
  auto out = results_.receive();
  if (!out) return StepOutput{0, Status(ErrorCode::kUnavailable, "pipeline stopped"), {}};
  if (!out->status.ok()) {
    stopped_ = Status(ErrorCode::kUnavailable,
                      "pipeline stopped after a failed step: " + out->status.message());
  }
  return std::move(*out);
}

std::int64_t LocalPipeline::kv_blocks() const {
  std::int64_t blocks = 0;
  for (const auto& worker : workers_) {
    const std::int64_t held = worker->stage()->executor().kv_blocks();
    blocks = blocks == 0 ? held : std::min(blocks, held);
  }
  return blocks;
}

std::vector<LayerRange> LocalPipeline::layer_ranges() const {
  std::vector<LayerRange> ranges;
  for (const auto& worker : workers_)
    ranges.push_back(worker->stage()->executor().layers());
  return ranges;
}

std::vector<StageStats> LocalPipeline::stage_stats() const {
  std::vector<StageStats> stats;
  for (const auto& worker : workers_)
    stats.push_back(worker->stage()->stats());
  return stats;
}

std::string LocalPipeline::backend_name() const {
  return workers_.front()->backend().name();
}

std::uint64_t LocalPipeline::weight_bytes() const {
  std::uint64_t bytes = 0;
  for (const auto& worker : workers_)
    bytes += worker->stage()->executor().weight_bytes();
  return bytes;
}

std::int64_t LocalPipeline::streamed_layers() const {
  std::int64_t layers = 0;
  for (const auto& worker : workers_)
    layers += worker->stage()->executor().weight_store().streamed_layers();
  return layers;
}

}  // namespace conveyor
