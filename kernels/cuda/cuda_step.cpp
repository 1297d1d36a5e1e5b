#include "kernels/cuda/cuda_step.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "kernels/cuda/attention_rows.h"
#include "kernels/cuda/host_image.h"

namespace conveyor::cuda {

CudaStep::CudaStep(StepLayout layout, std::shared_ptr<DevicePool> pool, PinnedStaging& staging,
                   std::unique_ptr<PoolBlock>* fixed)
    : BackendStep(std::move(layout)) {
  const StepLayout& l = this->layout();
  const auto tokens = static_cast<std::size_t>(l.num_tokens());
  std::vector<std::int32_t> row_sequence(tokens, -1);
  std::vector<DeviceSequence> sequences;
  std::vector<std::int32_t> tables;
  for (std::size_t s = 0; s < l.sequences.size(); ++s) {
    const AttentionSequence& seq = l.sequences[s];
    sequences.push_back(
        {static_cast<std::int32_t>(seq.first_row), static_cast<std::int32_t>(seq.num_new),
         static_cast<std::int32_t>(seq.start_position), static_cast<std::int32_t>(tables.size()),
         static_cast<std::int32_t>(seq.block_table.size())});
    tables.insert(tables.end(), seq.block_table.begin(), seq.block_table.end());
    for (std::int64_t i = 0; i < seq.num_new; ++i)
      row_sequence[static_cast<std::size_t>(seq.first_row + i)] = static_cast<std::int32_t>(s);
  }
  const AttentionRows attention = attention_rows(l);
  const std::vector<std::int32_t>& decode_rows = attention.decode_rows;
  const std::vector<std::int32_t>& prefill_groups = attention.prefill_groups;
  // One host image of every array, then one copy. The block tables come last, and a
  // recorded step's logit rows take room for one per row: every other array then starts
  // where the row count alone puts it.
  HostImage image;
  auto place = [&image](const void* data, std::size_t bytes) { return image.place(data, bytes); };
  const std::size_t o_tokens = place(l.tokens.data(), l.tokens.size() * 4);
  const std::size_t o_positions = place(l.positions.data(), l.positions.size() * 4);
  const std::size_t o_slots = place(l.slots.data(), l.slots.size() * 8);
  const std::size_t o_rows = place(row_sequence.data(), row_sequence.size() * 4);
  const std::size_t o_seqs = place(sequences.data(), sequences.size() * sizeof(DeviceSequence));
  const std::size_t o_decode = place(decode_rows.data(), decode_rows.size() * 4);
  const std::size_t o_groups = place(prefill_groups.data(), prefill_groups.size() * 4);
  std::vector<std::int64_t> logit_rows = l.logit_rows;
  if (l.recorded_rows > 0) {
    logit_rows.resize(std::max(logit_rows.size(), static_cast<std::size_t>(l.recorded_rows)));
  }
  const std::size_t o_logits = place(logit_rows.data(), logit_rows.size() * 8);
  const std::size_t o_tables = place(tables.data(), tables.size() * 4);
  const std::size_t bytes = std::max<std::size_t>(image.size(), 16);
  void* storage = nullptr;
  if (fixed != nullptr) {
    if (!*fixed || (*fixed)->bytes() < bytes) {
      // Room for longer block tables than this step's, so that it moves seldom.
      const std::size_t grown = std::max(bytes * 2, *fixed ? (*fixed)->bytes() * 2 : 0);
      fixed->reset();
      *fixed = std::make_unique<PoolBlock>(std::move(pool), grown, "a recorded step's metadata");
      moved_ = true;
    }
    storage = (*fixed)->data();
  } else {
    storage_ = std::make_unique<PoolBlock>(std::move(pool), bytes, "a step's metadata");
    storage = storage_->data();
  }
  staging.upload(storage, image.data(), image.size());
  auto* base = static_cast<std::uint8_t*>(storage);
  view_.tokens = reinterpret_cast<const std::int32_t*>(base + o_tokens);
  view_.positions = reinterpret_cast<const std::int32_t*>(base + o_positions);
  view_.slots = reinterpret_cast<const std::int64_t*>(base + o_slots);
  view_.row_sequence = reinterpret_cast<const std::int32_t*>(base + o_rows);
  view_.sequences = reinterpret_cast<const DeviceSequence*>(base + o_seqs);
  view_.block_tables = reinterpret_cast<const std::int32_t*>(base + o_tables);
  view_.logit_rows = reinterpret_cast<const std::int64_t*>(base + o_logits);
  view_.decode_rows = reinterpret_cast<const std::int32_t*>(base + o_decode);
  view_.prefill_groups = reinterpret_cast<const std::int32_t*>(base + o_groups);
  view_.num_tokens = static_cast<std::int32_t>(tokens);
  view_.num_sequences = static_cast<std::int32_t>(sequences.size());
  view_.num_logit_rows = static_cast<std::int32_t>(l.logit_rows.size());
  view_.num_decode_rows = static_cast<std::int32_t>(decode_rows.size());
  view_.num_prefill_groups = static_cast<std::int32_t>(prefill_groups.size());
}

}  // namespace conveyor::cuda
