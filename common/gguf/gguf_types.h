// The vocabulary of the GGUF format: metadata value type ids and ggml tensor
// type ids, as llama.cpp's gguf.h and ggml.h number them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/dtype.h"

namespace conveyor {

// GGUF metadata value types (gguf_type).
enum class GgufValueType : std::uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// Nullopt for ids outside the table.
std::optional<GgufValueType> gguf_value_type_from_id(std::uint32_t id);
// "uint32", "string", "array", ...
const char* gguf_value_type_name(GgufValueType type);
// Bytes of one fixed-size scalar; 0 for string and array, whose size is variable.
std::uint64_t gguf_scalar_size(GgufValueType type);
bool gguf_is_integer(GgufValueType type);
bool gguf_is_float(GgufValueType type);

// ggml tensor type ids that Conveyor reads.
inline constexpr std::uint32_t kGgmlTypeF32 = 0;
inline constexpr std::uint32_t kGgmlTypeF16 = 1;
inline constexpr std::uint32_t kGgmlTypeQ4_0 = 2;
inline constexpr std::uint32_t kGgmlTypeQ4_1 = 3;
inline constexpr std::uint32_t kGgmlTypeQ8_0 = 8;
inline constexpr std::uint32_t kGgmlTypeQ4_K = 12;
inline constexpr std::uint32_t kGgmlTypeQ6_K = 14;
inline constexpr std::uint32_t kGgmlTypeBF16 = 30;

// Nullopt for ggml types Conveyor cannot dequantise (Q5_K, IQ*, ...).
std::optional<DType> dtype_from_ggml_type(std::uint32_t ggml_type);
// Nullopt for Conveyor's own formats (Q4_G128, Q8_R, F8_R), which GGUF cannot hold.
std::optional<std::uint32_t> ggml_type_from_dtype(DType type);
// "Q5_K (13)", "unknown (99)": for error messages.
std::string ggml_type_description(std::uint32_t ggml_type);

}  // namespace conveyor
