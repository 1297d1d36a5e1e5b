// LayerStreamer: the layers of a stage that do not fit its weight budget, uploaded on
// demand from the memory-mapped model file into a bounded number of slots. A prefetch
// thread uploads the layers in the order the forward pass uses them (cyclically: after
// the last streamed layer comes the first one of the next step) while free slots
// remain, so the upload of layer l+1 runs while layer l computes; a slot is freed when
// its layer is released. The memory the streamed layers hold is therefore bounded by
// the slots, whatever the model's size.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "common/model_source.h"
#include "kernels/backend.h"
#include "worker/model_weights.h"

namespace conveyor {

struct StreamingStats {
  std::uint64_t uploads = 0;         // layers uploaded into a slot
  std::uint64_t bytes_uploaded = 0;  // their backend bytes
  std::uint64_t waits = 0;           // acquires that found their layer not yet uploaded
  double wait_seconds = 0;           // time those acquires blocked
  // Uploads that began while another layer was held by the forward pass: the
  // transfer overlapped compute.
  std::uint64_t overlapped_uploads = 0;
  // The most backend weight bytes seen alive (BackendMemoryInfo::weight_bytes), sampled
  // when each upload completes, which is when a streamed layer's memory peaks.
  std::uint64_t peak_backend_weight_bytes = 0;
};

class LayerStreamer {
 public:
  // Streams local layers [first, end) of a stage whose first model layer is
  // `range_begin`, through `slots` slots (at least 1). `source` and `backend` must
  // outlive the streamer. Starts prefetching `first` at once.
  LayerStreamer(Backend& backend, const ModelSource& source, std::int64_t range_begin,
                std::int64_t first, std::int64_t end, std::int64_t slots);
  ~LayerStreamer();
  LayerStreamer(const LayerStreamer&) = delete;
  LayerStreamer& operator=(const LayerStreamer&) = delete;

  std::int64_t slots() const { return static_cast<std::int64_t>(slots_.size()); }

  // Blocks until `local` is uploaded and marks its slot in use; the weights stay valid
  // until release(local). Rethrows the Error of a failed upload of this layer.
  const LayerWeights& acquire(std::int64_t local);
  // Frees the layer's slot for the next prefetch. The backend must have finished
  // reading the weights (the CPU backend is synchronous; a device backend would wait
  // for the stream that used them before reusing the slot).
  void release(std::int64_t local);

  StreamingStats stats() const;

 private:
  enum class SlotState { kFree, kLoading, kReady, kInUse };
  struct Slot {
    SlotState state = SlotState::kFree;
    std::int64_t layer = -1;
    LayerWeights weights;
  };

  void prefetch_loop();
  Slot* find(std::int64_t local);
  Slot* find_free();
  std::int64_t successor(std::int64_t local) const { return local + 1 < end_ ? local + 1 : first_; }

  Backend& backend_;
  const ModelSource& source_;
  const std::int64_t range_begin_;
  const std::int64_t first_;
  const std::int64_t end_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;  // a slot changed state, or stop
  std::vector<Slot> slots_;
  std::int64_t next_;      // the layer the prefetch thread uploads next
  std::int64_t held_ = 0;  // layers acquired and not released
  // A failed upload: the layer and its error, rethrown by the acquire of that layer.
  std::int64_t failed_layer_ = -1;
  std::exception_ptr failure_;
  bool stop_ = false;
  StreamingStats stats_;
  std::thread thread_;  // last: starts after the state above exists
};

}  // namespace conveyor
