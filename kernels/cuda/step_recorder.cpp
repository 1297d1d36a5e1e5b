#include "kernels/cuda/step_recorder.h"

#include "kernels/cuda/cuda_check.h"

namespace conveyor::cuda {

void StepRecorder::Recording::drop() {
  // A graph still running is freed once it finishes.
  if (graph != nullptr) cudaGraphExecDestroy(graph);
  graph = nullptr;
}

StepRecorder::~StepRecorder() {
  for (auto& [key, r] : recordings_)
    r.drop();
}

std::unique_ptr<PoolBlock>* StepRecorder::metadata(int lane, std::int64_t rows) {
  return &recordings_[{lane, rows}].metadata;
}

void StepRecorder::metadata_moved(int lane, std::int64_t rows) {
  recordings_[{lane, rows}].drop();
}

bool StepRecorder::replay(int lane, std::int64_t rows, cudaStream_t stream) {
  const auto it = recordings_.find({lane, rows});
  if (it == recordings_.end() || it->second.graph == nullptr ||
      it->second.generation != generation_) {
    return false;
  }
  CONVEYOR_CUDA(cudaGraphLaunch(it->second.graph, stream));
  return true;
}

void StepRecorder::begin(cudaStream_t stream) {
  CONVEYOR_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  recording_ = true;
  recording_generation_ = generation_;
}

bool StepRecorder::end(int lane, std::int64_t rows, cudaStream_t stream) {
  if (!recording_) return false;
  recording_ = false;
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(stream, &graph);
  // Scratch memory that moved while the ops were queued leaves the earlier ones
  // pointing at memory given back: such a recording is dropped, and the next step of
  // its size records again with the memory grown.
  if (ended != cudaSuccess || graph == nullptr || recording_generation_ != generation_) {
    cudaGetLastError();
    if (graph != nullptr) cudaGraphDestroy(graph);
    return false;
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  if (made != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  Recording& r = recordings_[{lane, rows}];
  r.drop();
  r.graph = exec;
  r.generation = generation_;
  return true;
}

}  // namespace conveyor::cuda
