#include "worker/weight_store.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "common/status.h"

namespace conveyor {
namespace {

std::string mib(std::uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return text;
}

}  // namespace

WeightStore::WeightStore(ModelWeights weights)
    : resident_(std::move(weights)),
      resident_layers_(resident_.layers().size()),
      total_bytes_(resident_.resident_bytes()),
      bound_bytes_(total_bytes_) {}

WeightStore::WeightStore(Backend& backend, const ModelSource& source, LayerRange range,
                         WeightBudget budget) {
  if (budget.unlimited()) {
    resident_ = ModelWeights::load(backend, source, range);
    resident_layers_ = range.size();
    total_bytes_ = bound_bytes_ = resident_.resident_bytes();
    return;
  }
  // Sizes in the backend's layout, one upload at a time: at most the head and one
  // layer are alive while measuring.
  const std::uint64_t head = ModelWeights::load(backend, source, range, 0).resident_bytes();
  std::vector<std::uint64_t> sizes;
  for (std::int64_t l = range.begin; l < range.end; ++l)
    sizes.push_back(ModelWeights::layer_bytes(ModelWeights::load_layer(backend, source, l)));
  const std::uint64_t largest = *std::max_element(sizes.begin(), sizes.end());
  total_bytes_ = head;
  for (std::uint64_t s : sizes)
    total_bytes_ += s;
  budget_bytes_ = budget.bytes != 0 ? budget.bytes
                                    : static_cast<std::uint64_t>(std::floor(
                                          budget.fraction * static_cast<double>(total_bytes_)));
  if (budget_bytes_ >= total_bytes_) {
    resident_ = ModelWeights::load(backend, source, range);
    resident_layers_ = range.size();
    bound_bytes_ = total_bytes_;
    return;
  }
  const std::uint64_t minimum = head + 2 * largest;
  if (budget_bytes_ < minimum) {
    fail(ErrorCode::kInvalidArgument,
         "weight budget of " + mib(budget_bytes_) + " is below the minimum of " + mib(minimum) +
             " (" + std::to_string(minimum) + " bytes) for layers " + std::to_string(range.begin) +
             "-" + std::to_string(range.end - 1) +
             " (embedding and head plus two streaming slots of the largest layer; all "
             "weights take " +
             mib(total_bytes_) + ")");
  }
  // The first layers stay resident while they fit beside two slots: the forward pass
  // runs them while the first streamed layer uploads.
  std::uint64_t resident = head;
  std::int64_t kept = 0;
  while (kept < range.size() &&
         resident + sizes[static_cast<std::size_t>(kept)] + 2 * largest <= budget_bytes_) {
    resident += sizes[static_cast<std::size_t>(kept)];
    ++kept;
  }
  const std::int64_t streamed = range.size() - kept;
  // What is left of the budget buys further slots: more layers prefetched ahead.
  const auto spare_slots = static_cast<std::int64_t>((budget_bytes_ - resident) / largest);
  const std::int64_t slot_count = std::min(streamed, std::max<std::int64_t>(2, spare_slots));
  resident_ = ModelWeights::load(backend, source, range, kept);
  resident_layers_ = kept;
  bound_bytes_ = resident + static_cast<std::uint64_t>(slot_count) * largest;
  streamer_ =
      std::make_unique<LayerStreamer>(backend, source, range.begin, kept, range.size(), slot_count);
}

WeightStore::~WeightStore() = default;

}  // namespace conveyor
