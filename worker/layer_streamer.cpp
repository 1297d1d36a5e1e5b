#include "worker/layer_streamer.h"

#include <algorithm>
#include <chrono>

namespace conveyor {

LayerStreamer::LayerStreamer(Backend& backend, const ModelSource& source, std::int64_t range_begin,
                             std::int64_t first, std::int64_t end, std::int64_t slots)
    : backend_(backend),
      source_(source),
      range_begin_(range_begin),
      first_(first),
      end_(end),
      slots_(static_cast<std::size_t>(std::max<std::int64_t>(1, slots))),
      next_(first),
      thread_([this] { prefetch_loop(); }) {}

LayerStreamer::~LayerStreamer() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

LayerStreamer::Slot* LayerStreamer::find(std::int64_t local) {
  for (Slot& s : slots_) {
    if (s.state != SlotState::kFree && s.layer == local) return &s;
  }
  return nullptr;
}

LayerStreamer::Slot* LayerStreamer::find_free() {
  for (Slot& s : slots_) {
    if (s.state == SlotState::kFree) return &s;
  }
  return nullptr;
}

void LayerStreamer::prefetch_loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    Slot* slot = failure_ == nullptr ? find_free() : nullptr;
    // The layer due next may already sit in a slot when every streamed layer fits the
    // slots at once; it is uploaded again only after its release.
    if (slot == nullptr || find(next_) != nullptr) {
      changed_.wait(lock);
      continue;
    }
    const std::int64_t layer = next_;
    next_ = successor(layer);
    slot->state = SlotState::kLoading;
    slot->layer = layer;
    const bool overlapped = held_ > 0;
    lock.unlock();
    LayerWeights weights;
    std::exception_ptr error;
    try {
      weights = ModelWeights::load_layer(backend_, source_, range_begin_ + layer);
    } catch (...) {
      error = std::current_exception();
    }
    const std::uint64_t alive = backend_.memory_info().weight_bytes;
    lock.lock();
    stats_.peak_backend_weight_bytes = std::max(stats_.peak_backend_weight_bytes, alive);
    if (error != nullptr) {
      slot->state = SlotState::kFree;
      slot->layer = -1;
      failed_layer_ = layer;
      failure_ = error;
    } else {
      slot->weights = std::move(weights);
      slot->state = SlotState::kReady;
      ++stats_.uploads;
      stats_.bytes_uploaded += ModelWeights::layer_bytes(slot->weights);
      if (overlapped) ++stats_.overlapped_uploads;
    }
    changed_.notify_all();
  }
}

const LayerWeights& LayerStreamer::acquire(std::int64_t local) {
  std::unique_lock<std::mutex> lock(mutex_);
  bool waited = false;
  const auto start = std::chrono::steady_clock::now();
  while (true) {
    if (failure_ != nullptr && failed_layer_ == local) {
      // Reported once; the next acquire of the layer tries the upload again.
      std::exception_ptr error = failure_;
      failure_ = nullptr;
      failed_layer_ = -1;
      next_ = local;
      changed_.notify_all();
      std::rethrow_exception(error);
    }
    Slot* slot = find(local);
    if (slot != nullptr && slot->state == SlotState::kReady) {
      slot->state = SlotState::kInUse;
      ++held_;
      if (waited) {
        ++stats_.waits;
        stats_.wait_seconds +=
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      }
      return slot->weights;
    }
    if (slot == nullptr) {
      // Out of the prefetch order (the first use after a failed step, or a caller that
      // skips layers): restart the prefetch here, dropping the layers it ran ahead to.
      next_ = local;
      if (failure_ != nullptr) {  // an earlier layer's error, now moot
        failure_ = nullptr;
        failed_layer_ = -1;
      }
      for (Slot& s : slots_) {
        if (s.state == SlotState::kReady) {
          s = Slot{};
        }
      }
      changed_.notify_all();
    }
    waited = true;
    changed_.wait(lock);
  }
}

void LayerStreamer::release(std::int64_t local) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    Slot* slot = find(local);
    if (slot == nullptr || slot->state != SlotState::kInUse) return;
    // Freed under the lock: the prefetch thread must not fill the slot while the old
    // layer's memory is still alive, or the slots' bound would not hold.
    *slot = Slot{};
    --held_;
  }
  changed_.notify_all();
}

StreamingStats LayerStreamer::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

}  // namespace conveyor
