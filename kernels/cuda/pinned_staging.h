// PinnedStaging: copies between pageable host memory and the device that return
// without waiting for the stream. cudaMemcpyAsync from or to pageable memory may block
// the host until the stream drains, which would keep the host from preparing step n+1
// while the device runs step n. Here every copy goes through a page-locked buffer of a
// small reused set: an upload is copied into one and queued; a download is queued into
// one and lands in its pageable destination when the fence (StagingFence) that
// follows it is waited on.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "kernels/backend.h"

namespace conveyor::cuda {

class PinnedStaging;

// Backend::fence() on the CUDA backend: an event after the ops issued so far, and the
// downloads queued before it, which wait() copies to their destinations.
class StagingFence final : public BackendFence {
 public:
  struct Landing {
    std::size_t buffer = 0;  // the staging buffer's index
    void* host = nullptr;
    std::size_t bytes = 0;
  };
  StagingFence(PinnedStaging& staging, cudaEvent_t event, std::vector<Landing> landings);
  ~StagingFence() override;  // waits (ignoring errors) so that the buffers may be reused
  StagingFence(const StagingFence&) = delete;
  StagingFence& operator=(const StagingFence&) = delete;

  bool ready() override;
  void wait() override;

 private:
  PinnedStaging& staging_;
  cudaEvent_t event_;
  std::vector<Landing> landings_;
  bool waited_ = false;
};

class PinnedStaging {
 public:
  explicit PinnedStaging(cudaStream_t stream);
  ~PinnedStaging();  // waits for the stream, then frees the buffers
  PinnedStaging(const PinnedStaging&) = delete;
  PinnedStaging& operator=(const PinnedStaging&) = delete;

  // Copies `bytes` of host memory to device memory in stream order; `src` may go as
  // soon as this returns.
  void upload(void* device_dst, const void* src, std::size_t bytes);
  // Queues a copy of device memory that lands in `host_dst` when the next fence() is
  // waited on (or at land_all()); `host_dst` must stay until then.
  void download(void* host_dst, const void* device_src, std::size_t bytes);
  // An event after everything queued on the stream so far, with the downloads queued
  // since the last fence.
  std::unique_ptr<StagingFence> fence();
  // After the stream has been synchronised: lands the downloads no fence took.
  void land_all();

 private:
  friend class StagingFence;
  struct Buffer {
    void* host = nullptr;
    std::size_t bytes = 0;
    cudaEvent_t done = nullptr;  // after the last copy that used it
    bool held = false;           // a download waits in it for its landing
  };

  // A buffer of at least `bytes` whose last copy has finished, made if none is free.
  std::size_t acquire(std::size_t bytes);
  // Copies landed downloads out and frees their buffers (under mutex_).
  void land(const std::vector<StagingFence::Landing>& landings);
  // Frees the buffers of downloads that will not land (takes mutex_).
  void drop(const std::vector<StagingFence::Landing>& landings);

  cudaStream_t stream_;
  std::mutex mutex_;
  std::vector<Buffer> buffers_;
  std::vector<StagingFence::Landing> queued_;  // downloads no fence has taken yet
};

}  // namespace conveyor::cuda
