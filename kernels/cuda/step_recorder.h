// StepRecorder: the CUDA backend's recorded decode steps (Backend::replay_step), one CUDA
// graph per lane and row count, with the block that keeps those steps' metadata at
// fixed addresses. A graph holds the addresses its ops were queued with: it is valid
// only while the memory under it stays, so every move of scratch memory or of the
// model's workspace (memory_moved()) makes the recordings stale until recorded again.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <memory>
#include <utility>

#include "kernels/cuda/pool_block.h"

namespace conveyor::cuda {

class StepRecorder {
 public:
  StepRecorder() = default;
  ~StepRecorder();  // destroys the graphs (a launched one finishes first)
  StepRecorder(const StepRecorder&) = delete;
  StepRecorder& operator=(const StepRecorder&) = delete;

  // The metadata block of the steps of `rows` rows on `lane` (CudaStep's fixed block).
  std::unique_ptr<PoolBlock>* metadata(int lane, std::int64_t rows);
  // That block moved: its recording is dropped.
  void metadata_moved(int lane, std::int64_t rows);
  // Launches the recording of such steps on `stream` if there is a valid one.
  bool replay(int lane, std::int64_t rows, cudaStream_t stream);
  // Starts capturing `stream`'s ops of this thread; end() keeps them as the recording
  // of (lane, rows) unless the capture failed or memory moved meanwhile.
  void begin(cudaStream_t stream);
  bool end(int lane, std::int64_t rows, cudaStream_t stream);
  bool recording() const { return recording_; }
  void memory_moved() { ++generation_; }

 private:
  struct Recording {
    std::unique_ptr<PoolBlock> metadata;
    cudaGraphExec_t graph = nullptr;
    std::uint64_t generation = 0;  // generation_ when recorded
    void drop();
  };

  std::map<std::pair<int, std::int64_t>, Recording> recordings_;
  std::uint64_t generation_ = 0;  // counts moves of memory that ops address
  bool recording_ = false;
  std::uint64_t recording_generation_ = 0;
};

}  // namespace conveyor::cuda
