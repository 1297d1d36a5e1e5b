#include "worker/weight_store.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "common/log/log.h"
#include "common/status.h"
#include "worker/host_pinning.h"

namespace conveyor {
namespace {

std::string mib(std::uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return text;
}

// The model layer of a "blk.N.*" tensor; -1 for any other.
std::int64_t tensor_layer(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  std::int64_t layer = 0;
  std::size_t i = 4;
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9'; ++i)
    layer = layer * 10 + (name[i] - '0');
  return i > 4 && i < name.size() && name[i] == '.' ? layer : -1;
}

// The host bytes of model layers [first, end) of `source`, as page ranges: the driver
// pins whole pages, so two ranges sharing one would collide, and are merged instead.
// Ranges that only touch stay apart (they may be different mappings).
std::vector<std::pair<std::uintptr_t, std::uintptr_t>> layer_pages(const ModelSource& source,
                                                                   std::int64_t first,
                                                                   std::int64_t end) {
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> ranges;
  for (const TensorRef& tensor : source.tensors()) {
    const std::int64_t layer = tensor_layer(tensor.name);
    if (layer < first || layer >= end || tensor.bytes.empty()) continue;
    const auto begin = reinterpret_cast<std::uintptr_t>(tensor.bytes.data());
    ranges.emplace_back(begin / page * page,
                        (begin + tensor.bytes.size() + page - 1) / page * page);
  }
  std::sort(ranges.begin(), ranges.end());
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> merged;
  for (const auto& range : ranges) {
    if (!merged.empty() && range.first < merged.back().second) {
      merged.back().second = std::max(merged.back().second, range.second);
    } else {
      merged.push_back(range);
    }
  }
  return merged;
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
  for (const auto& [begin, end] : layer_pages(source, range.begin + kept, range.end)) {
    auto pinning =
        pin_read_only_or_warn(backend, reinterpret_cast<const void*>(begin), end - begin);
    if (pinning == nullptr) continue;
    pinned_.push_back(std::move(pinning));
    pinned_host_bytes_ += end - begin;
  }
  if (pinned_host_bytes_ > 0) {
    log::info(logger("weights"),
              "weights: " + mib(pinned_host_bytes_) + " of streamed layers " +
                  std::to_string(range.begin + kept) + "-" + std::to_string(range.end - 1) +
                  " pinned in host memory for " + backend.name() +
                  " (their pages are committed and stay resident)",
              {{"bytes", pinned_host_bytes_}});
  }
  streamer_ =
      std::make_unique<LayerStreamer>(backend, source, range.begin, kept, range.size(), slot_count);
}

WeightStore::~WeightStore() = default;

}  // namespace conveyor
