#include "common/dtype.h"

#include <array>

namespace conveyor {
namespace {

struct DTypeInfo {
  DType type;
  std::string_view name;
  DTypeLayout layout;
  std::uint32_t row_scale_bytes = 0;
};

// Block layouts as the GGUF format defines them (ggml-common.h), then Conveyor's own.
// In enum order: info() indexes by the enum's value.
constexpr std::array<DTypeInfo, 12> kTypes = {{
    {DType::kF32, "f32", {1, 4}},
    {DType::kF16, "f16", {1, 2}},
    {DType::kBF16, "bf16", {1, 2}},
    {DType::kQ8_0, "q8_0", {32, 34}},    // f16 d + 32 x int8
    {DType::kQ4_0, "q4_0", {32, 18}},    // f16 d + 16 bytes of nibbles
    {DType::kQ4_1, "q4_1", {32, 20}},    // f16 d + f16 m + 16 bytes of nibbles
    {DType::kQ4_K, "q4_k", {256, 144}},  // f16 d, f16 dmin, 12 bytes scales, 128 bytes nibbles
    {DType::kQ6_K, "q6_k", {256, 210}},  // 128 ql + 64 qh + 16 int8 scales + f16 d
    // f16 d + f16 m + four 16-byte runs of nibbles, each laid out as Q4_1's: a Q4_1
    // block of 32 for every 32 values, sharing one d and m.
    {DType::kQ4_G128, "q4_g128", {128, 68}},
    {DType::kQ8_R, "q8_r", {1, 1}, 2},  // int8 per value; f16 scale per row beside them
    {DType::kF8_R, "f8_r", {1, 1}, 4},  // E4M3 per value; f32 scale per row beside them
    // 8 kept f16 values (2 of every 4) + u16 of their positions (common/sparse24.h)
    {DType::kS24_F16, "s24_f16", {16, 18}},
}};

constexpr bool in_enum_order() {
  for (std::size_t i = 0; i < kTypes.size(); ++i) {
    if (static_cast<std::size_t>(kTypes[i].type) != i) return false;
  }
  return true;
}
static_assert(in_enum_order());

const DTypeInfo& info(DType type) {
  return kTypes[static_cast<std::size_t>(type)];
}

}  // namespace

DTypeLayout dtype_layout(DType type) {
  return info(type).layout;
}
std::string_view dtype_name(DType type) {
  return info(type).name;
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& t : kTypes) {
    if (t.name == name) return t.type;
  }
  return std::nullopt;
}

bool dtype_is_quantized(DType type) {
  return info(type).layout.block_elements > 1 || info(type).row_scale_bytes != 0;
}

std::uint32_t dtype_row_scale_bytes(DType type) {
  return info(type).row_scale_bytes;
}

std::optional<std::uint64_t> dtype_bytes(DType type, std::uint64_t elements) {
  const DTypeLayout layout = dtype_layout(type);
  if (elements % layout.block_elements != 0) return std::nullopt;
  const std::uint64_t blocks = elements / layout.block_elements;
  std::uint64_t bytes = 0;
  if (__builtin_mul_overflow(blocks, static_cast<std::uint64_t>(layout.block_bytes), &bytes)) {
    return std::nullopt;
  }
  return bytes;
}

}  // namespace conveyor
