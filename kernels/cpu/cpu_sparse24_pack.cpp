#include "kernels/cpu/cpu_sparse24_pack.h"

#include <cstring>

#include "common/dequantize.h"
#include "common/sparse24.h"
#include "kernels/cpu/cpu_gemm.h"

namespace conveyor::cpu {
namespace {

std::uint16_t load_u16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}

// Where chunk `chunk` of row `row`'s panel starts in a packed weight.
std::int64_t chunk_offset(std::int64_t row, std::int64_t k, std::int64_t chunk) {
  return row / kPanelWidth * s24_panel_bytes(k) + chunk * kS24ChunkBytes;
}

}  // namespace

std::int64_t s24_packed_bytes(std::int64_t n, std::int64_t k) {
  return (n + kPanelWidth - 1) / kPanelWidth * s24_panel_bytes(k);
}

void pack_s24_rows(const std::uint8_t* src, std::int64_t row_begin, std::int64_t row_end,
                   std::int64_t k, std::uint8_t* packed) {
  const std::int64_t chunks = k / kS24ChunkValues;
  for (std::int64_t r = row_begin; r < row_end; ++r) {
    const std::int64_t lane = r % kPanelWidth;
    const std::uint8_t* blocks = src + (r - row_begin) * chunks * kS24BlockBytes;
    for (std::int64_t c = 0; c < chunks; ++c) {
      const std::uint8_t* block = blocks + c * kS24BlockBytes;
      std::uint8_t* chunk = packed + chunk_offset(r, k, c);
      const std::uint16_t meta = s24_block_meta(block);
      std::uint32_t index = 0;
      for (int g = 0; g < 4; ++g) {
        for (int s = 0; s < 2; ++s) {
          const auto at = static_cast<std::uint32_t>(4 * g + s24_position(meta, g, s));
          index |= at << (8 * g + 4 * s);
        }
      }
      std::memcpy(chunk + lane * 4, &index, sizeof(index));
      for (std::int64_t j = 0; j < 8; ++j) {
        const float value = fp16_to_fp32(load_u16(block + 2 * j));
        std::memcpy(chunk + kS24ChunkKeptOffset + (j * kPanelWidth + lane) * 4, &value, 4);
      }
    }
  }
}

void unpack_s24_row(const std::uint8_t* packed, std::int64_t row, std::int64_t k, float* out) {
  const std::int64_t lane = row % kPanelWidth;
  for (std::int64_t c = 0; c < k / kS24ChunkValues; ++c, out += kS24ChunkValues) {
    const std::uint8_t* chunk = packed + chunk_offset(row, k, c);
    std::uint32_t index = 0;
    std::memcpy(&index, chunk + lane * 4, sizeof(index));
    for (std::int64_t i = 0; i < kS24ChunkValues; ++i)
      out[i] = 0.0f;
    for (int j = 0; j < 8; ++j) {
      std::memcpy(out + ((index >> (4 * j)) & 15),
                  chunk + kS24ChunkKeptOffset + (j * kPanelWidth + lane) * 4, 4);
    }
  }
}

}  // namespace conveyor::cpu
