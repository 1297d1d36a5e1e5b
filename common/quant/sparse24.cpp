#include "common/quant/sparse24.h"

#include <algorithm>
#include <string>

#include "common/half.h"
#include "common/quant/weight_checks.h"
#include "common/sparse24.h"
#include "common/status.h"

namespace conveyor::quant {
namespace {

void put_u16(std::uint8_t* p, std::uint16_t v) {  // little-endian, as the format is
  p[0] = static_cast<std::uint8_t>(v & 0xFF);
  p[1] = static_cast<std::uint8_t>(v >> 8);
}

// The positions a group keeps: its nonzeros, then its first zeros until there are two.
// Throws when it has more than two nonzeros.
void group_positions(const float* group, std::int64_t row, std::int64_t index, int& p0, int& p1) {
  int kept[4];
  int count = 0;
  for (int i = 0; i < 4; ++i) {
    if (group[i] != 0.0f) kept[count++] = i;
  }
  if (count > 2) {
    fail(ErrorCode::kInvalidArgument,
         "2:4 compression: row " + std::to_string(row) + ", group " + std::to_string(index) +
             " (k " + std::to_string(4 * index) + ".." + std::to_string(4 * index + 3) + ") has " +
             std::to_string(count) + " nonzeros; 2:4 keeps at most 2 of every 4");
  }
  for (int i = 0; i < 4 && count < 2; ++i) {
    if (group[i] == 0.0f) kept[count++] = i;
  }
  p0 = std::min(kept[0], kept[1]);
  p1 = std::max(kept[0], kept[1]);
}

}  // namespace

QuantizedTensor quantize_sparse24(std::span<const float> w, std::int64_t n, std::int64_t k) {
  check_matrix(w, n, k, "2:4 compression");
  if (k % kS24Block != 0) {
    fail(ErrorCode::kInvalidArgument, "2:4 compression: rows of " + std::to_string(k) +
                                          " values are not whole blocks of " +
                                          std::to_string(kS24Block));
  }
  QuantizedTensor out;
  out.dtype = DType::kS24_F16;
  out.shape = {n, k};
  out.bytes.resize(*dtype_bytes(DType::kS24_F16, w.size()));
  const std::int64_t blocks_per_row = k / kS24Block;
  for (std::int64_t r = 0; r < n; ++r) {
    for (std::int64_t b = 0; b < blocks_per_row; ++b) {
      const float* values = w.data() + r * k + b * kS24Block;
      std::uint8_t* block = out.bytes.data() + (r * blocks_per_row + b) * kS24BlockBytes;
      std::uint16_t meta = 0;
      for (int g = 0; g < 4; ++g) {
        int p0 = 0;
        int p1 = 0;
        group_positions(values + 4 * g, r, b * 4 + g, p0, p1);
        meta = static_cast<std::uint16_t>(meta | s24_group_meta(p0, p1, g));
        for (int which = 0; which < 2; ++which) {
          const float v = values[4 * g + (which == 0 ? p0 : p1)];
          const std::uint16_t h = fp32_to_fp16(v);
          if ((h & 0x7FFFu) == 0x7C00u) {
            fail(ErrorCode::kInvalidArgument,
                 "2:4 compression: row " + std::to_string(r) + ", k " +
                     std::to_string(b * kS24Block + 4 * g + (which == 0 ? p0 : p1)) +
                     " holds a value beyond f16's range");
          }
          put_u16(block + 4 * g + 2 * which, h);
        }
      }
      put_u16(block + kS24MetaOffset, meta);
    }
  }
  return out;
}

}  // namespace conveyor::quant
