#include "kernels/cuda/sample_upload.h"

#include <string>
#include <vector>

#include "common/status.h"
#include "kernels/cuda/cuda_ops.h"

namespace conveyor::cuda {

SampleUpload pack_sample_rows(std::span<const SampleRow> rows) {
  std::vector<DeviceSampleRow> device_rows;
  std::vector<std::int32_t> tokens;
  std::vector<std::int32_t> counts;  // beside tokens; 0 for the tokens seen
  for (const SampleRow& row : rows) {
    if (row.output_tokens.size() != row.output_counts.size()) {
      fail(ErrorCode::kInvalidArgument, "sample: " + std::to_string(row.output_tokens.size()) +
                                            " output tokens with " +
                                            std::to_string(row.output_counts.size()) + " counts");
    }
    DeviceSampleRow d;
    d.uniform = row.uniform;
    d.temperature = row.temperature;
    d.top_k = row.top_k;
    d.top_p = row.top_p;
    d.min_p = row.min_p;
    d.repetition_penalty = row.repetition_penalty;
    d.presence_penalty = row.presence_penalty;
    d.frequency_penalty = row.frequency_penalty;
    d.greedy = row.greedy ? 1 : 0;
    d.seen_offset = static_cast<std::int32_t>(tokens.size());
    d.seen_count = static_cast<std::int32_t>(row.seen_tokens.size());
    tokens.insert(tokens.end(), row.seen_tokens.begin(), row.seen_tokens.end());
    counts.resize(tokens.size(), 0);
    d.output_offset = static_cast<std::int32_t>(tokens.size());
    d.output_count = static_cast<std::int32_t>(row.output_tokens.size());
    tokens.insert(tokens.end(), row.output_tokens.begin(), row.output_tokens.end());
    counts.insert(counts.end(), row.output_counts.begin(), row.output_counts.end());
    device_rows.push_back(d);
  }
  SampleUpload upload;
  upload.rows =
      upload.image.place(device_rows.data(), device_rows.size() * sizeof(DeviceSampleRow));
  upload.tokens = upload.image.place(tokens.data(), tokens.size() * 4);
  upload.counts = upload.image.place(counts.data(), counts.size() * 4);
  upload.out = upload.image.place(nullptr, rows.size() * 4);
  return upload;
}

}  // namespace conveyor::cuda
