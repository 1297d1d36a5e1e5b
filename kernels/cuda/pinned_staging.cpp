#include "kernels/cuda/pinned_staging.h"

#include <bit>
#include <cstring>
#include <utility>

#include "kernels/cuda/cuda_check.h"

namespace conveyor::cuda {

namespace {

// Buffers come in powers of two from 64 KiB, so that a few serve steps of every size.
constexpr std::size_t kSmallestBuffer = std::size_t{64} << 10;

}  // namespace

StagingFence::StagingFence(PinnedStaging& staging, cudaEvent_t event, std::vector<Landing> landings)
    : staging_(staging), event_(event), landings_(std::move(landings)) {}

StagingFence::~StagingFence() {
  if (!waited_) {
    // A destructor cannot report: an error here is the device's, and the next op
    // reports it. The buffers still must not be handed out while copies may run.
    if (cudaEventSynchronize(event_) != cudaSuccess) cudaGetLastError();
    staging_.drop(landings_);
  }
  cudaEventDestroy(event_);
}

bool StagingFence::ready() {
  return waited_ || event_done(event_);
}

void StagingFence::wait() {
  if (waited_) return;
  CONVEYOR_CUDA(cudaEventSynchronize(event_));
  std::lock_guard lock(staging_.mutex_);
  staging_.land(landings_);
  waited_ = true;
}

PinnedStaging::PinnedStaging(cudaStream_t stream) : stream_(stream) {}

PinnedStaging::~PinnedStaging() {
  cudaStreamSynchronize(stream_);
  for (Buffer& b : buffers_) {
    cudaFreeHost(b.host);
    cudaEventDestroy(b.done);
  }
}

std::size_t PinnedStaging::acquire(std::size_t bytes) {
  std::size_t best = buffers_.size();
  for (std::size_t i = 0; i < buffers_.size(); ++i) {
    Buffer& b = buffers_[i];
    if (b.held || b.bytes < bytes) continue;
    if (best < buffers_.size() && buffers_[best].bytes <= b.bytes) continue;
    if (event_done(b.done)) best = i;
  }
  if (best < buffers_.size()) return best;
  Buffer b;
  b.bytes = std::bit_ceil(std::max(bytes, kSmallestBuffer));
  CONVEYOR_CUDA(cudaHostAlloc(&b.host, b.bytes, cudaHostAllocDefault));
  const cudaError_t made = cudaEventCreateWithFlags(&b.done, cudaEventDisableTiming);
  if (made != cudaSuccess) {
    cudaFreeHost(b.host);
    CONVEYOR_CUDA(made);
  }
  buffers_.push_back(b);
  return buffers_.size() - 1;
}

void PinnedStaging::upload(void* device_dst, const void* src, std::size_t bytes) {
  if (bytes == 0) return;
  std::lock_guard lock(mutex_);
  Buffer& b = buffers_[acquire(bytes)];
  std::memcpy(b.host, src, bytes);
  CONVEYOR_CUDA(cudaMemcpyAsync(device_dst, b.host, bytes, cudaMemcpyHostToDevice, stream_));
  CONVEYOR_CUDA(cudaEventRecord(b.done, stream_));
}

void PinnedStaging::download(void* host_dst, const void* device_src, std::size_t bytes) {
  if (bytes == 0) return;
  std::lock_guard lock(mutex_);
  const std::size_t index = acquire(bytes);
  Buffer& b = buffers_[index];
  // Held from here on: should the copy be queued and the event fail, the buffer is
  // still taken until a fence (whose own event follows the copy) lands it.
  b.held = true;
  queued_.push_back({index, host_dst, bytes});
  CONVEYOR_CUDA(cudaMemcpyAsync(b.host, device_src, bytes, cudaMemcpyDeviceToHost, stream_));
  CONVEYOR_CUDA(cudaEventRecord(b.done, stream_));
}

std::unique_ptr<StagingFence> PinnedStaging::fence() {
  std::vector<StagingFence::Landing> landings;
  {
    std::lock_guard lock(mutex_);
    landings.swap(queued_);
  }
  cudaEvent_t event = nullptr;
  cudaError_t error = cudaEventCreateWithFlags(&event, cudaEventDisableTiming);
  if (error == cudaSuccess) error = cudaEventRecord(event, stream_);
  if (error != cudaSuccess) {
    // No fence to land them: the downloads are dropped, their buffers freed once the
    // copies cannot run any more, and the failure goes to the caller.
    if (event != nullptr) cudaEventDestroy(event);
    cudaStreamSynchronize(stream_);
    cudaGetLastError();
    drop(landings);
    fail_cuda(error, "cudaEventRecord (a staging fence)", __FILE__, __LINE__);
  }
  return std::make_unique<StagingFence>(*this, event, std::move(landings));
}

void PinnedStaging::land_all() {
  std::lock_guard lock(mutex_);
  land(queued_);
  queued_.clear();
}

void PinnedStaging::drop(const std::vector<StagingFence::Landing>& landings) {
  std::lock_guard lock(mutex_);
  for (const StagingFence::Landing& l : landings)
    buffers_[l.buffer].held = false;
}

void PinnedStaging::land(const std::vector<StagingFence::Landing>& landings) {
  for (const StagingFence::Landing& l : landings) {
    Buffer& b = buffers_[l.buffer];
    std::memcpy(l.host, b.host, l.bytes);
    b.held = false;
  }
}

}  // namespace conveyor::cuda
