// WeightStore: a stage's weights under a device budget. The embedding, the output head
// and as many of the first layers as fit stay resident; the remaining layers are
// streamed in from the memory-mapped model file through a LayerStreamer, so that a
// model larger than the budget still runs (with large batches the uploads hide behind
// the compute: throughput, not latency). Without a budget everything is resident and
// no thread runs: acquire() is then a plain lookup.
//
// The streamed layers' bytes in host memory (the mapped model file, or a random model's
// buffers) are pinned for the backend's device where it pins: their uploads are then
// DMA at the bus's full rate. Pinning commits those pages at construction and keeps
// them in memory for the store's life (read-only registration, so that a read-only
// file mapping qualifies where the driver supports it; elsewhere such a mapping stays
// unpinned, with a warning).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/model_source.h"
#include "kernels/backend.h"
#include "worker/layer_streamer.h"
#include "worker/model_weights.h"
#include "worker/weight_budget.h"

namespace conveyor {

class WeightStore {
 public:
  // Every layer resident.
  explicit WeightStore(ModelWeights weights);
  // Loads layers `range` of `source` (which must outlive the store) under `budget`.
  // The backend sizes of the tensors (its own layout, e.g. padded panels) are learnt
  // by uploading each layer once. Throws Error as ModelWeights::load, and
  // kInvalidArgument naming the minimum for a budget that cannot hold the embedding,
  // the head and two streaming slots of the largest layer.
  WeightStore(Backend& backend, const ModelSource& source, LayerRange range, WeightBudget budget);
  ~WeightStore();
  WeightStore(const WeightStore&) = delete;
  WeightStore& operator=(const WeightStore&) = delete;

  // The resident weights; layers from resident_layers() on are empty there.
  const ModelWeights& resident() const { return resident_; }
  std::int64_t resident_layers() const { return resident_layers_; }
  std::int64_t streamed_layers() const { return resident_.layers().size() - resident_layers_; }
  std::int64_t slots() const { return streamer_ ? streamer_->slots() : 0; }
  // Bytes the backend holds for the resident weights.
  std::uint64_t resident_bytes() const { return resident_.resident_bytes(); }
  // Bytes all the stage's weights take in the backend (resident + streamed layers).
  std::uint64_t total_bytes() const { return total_bytes_; }
  // The budget in bytes; 0 when unlimited.
  std::uint64_t budget_bytes() const { return budget_bytes_; }
  // Resident bytes plus the slots at their largest: what the weights may hold at once.
  std::uint64_t bound_bytes() const { return bound_bytes_; }
  // Host bytes of the streamed layers pinned for the device (0: none, or a CPU backend).
  std::uint64_t pinned_host_bytes() const { return pinned_host_bytes_; }

  // Layer `local` (0 = the range's first), resident until release(local). A streamed
  // layer blocks until uploaded and starts the prefetch of the ones after it.
  const LayerWeights& acquire(std::int64_t local) {
    if (local < resident_layers_) return resident_.layer(local);
    return streamer_->acquire(local);
  }
  void release(std::int64_t local) {
    if (local >= resident_layers_) streamer_->release(local);
  }

  StreamingStats stats() const { return streamer_ ? streamer_->stats() : StreamingStats{}; }

 private:
  ModelWeights resident_;
  std::int64_t resident_layers_ = 0;
  std::uint64_t total_bytes_ = 0;
  std::uint64_t budget_bytes_ = 0;
  std::uint64_t bound_bytes_ = 0;
  std::uint64_t pinned_host_bytes_ = 0;
  // Before the streamer: unpinned only after its last upload.
  std::vector<std::unique_ptr<HostPinning>> pinned_;
  std::unique_ptr<LayerStreamer> streamer_;
};

// Holds a layer from acquire() to release(), also when the layer's compute throws.
class HeldLayer {
 public:
  HeldLayer(WeightStore& store, std::int64_t local)
      : store_(store), local_(local), weights_(store.acquire(local)) {}
  ~HeldLayer() { store_.release(local_); }
  HeldLayer(const HeldLayer&) = delete;
  HeldLayer& operator=(const HeldLayer&) = delete;
  const LayerWeights& weights() const { return weights_; }

 private:
  WeightStore& store_;
  std::int64_t local_;
  const LayerWeights& weights_;
};

}  // namespace conveyor
