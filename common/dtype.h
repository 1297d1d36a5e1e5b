// Element types of stored tensors, including GGUF's block-quantised types.
// A quantised type packs `block_elements` values into `block_bytes` bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace conveyor {

enum class DType : std::uint8_t { kF32, kF16, kBF16, kQ8_0, kQ4_0, kQ4_1, kQ4_K, kQ6_K };

struct DTypeLayout {
  std::uint32_t block_elements;  // values per block (1 for plain types)
  std::uint32_t block_bytes;     // bytes per block
};

DTypeLayout dtype_layout(DType type);
std::string_view dtype_name(DType type);  // "f32", "q4_k", ...
std::optional<DType> dtype_from_name(std::string_view name);
bool dtype_is_quantized(DType type);

// Bytes needed for `elements` values of `type`, or nullopt when `elements` is not a
// whole number of blocks or the product overflows.
std::optional<std::uint64_t> dtype_bytes(DType type, std::uint64_t elements);

}  // namespace conveyor
