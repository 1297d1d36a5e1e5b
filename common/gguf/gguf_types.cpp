#include "common/gguf/gguf_types.h"

#include <array>

namespace conveyor {

std::optional<GgufValueType> gguf_value_type_from_id(std::uint32_t id) {
  if (id > static_cast<std::uint32_t>(GgufValueType::kFloat64)) return std::nullopt;
  return static_cast<GgufValueType>(id);
}

const char* gguf_value_type_name(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
      return "uint8";
    case GgufValueType::kInt8:
      return "int8";
    case GgufValueType::kUint16:
      return "uint16";
    case GgufValueType::kInt16:
      return "int16";
    case GgufValueType::kUint32:
      return "uint32";
    case GgufValueType::kInt32:
      return "int32";
    case GgufValueType::kFloat32:
      return "float32";
    case GgufValueType::kBool:
      return "bool";
    case GgufValueType::kString:
      return "string";
    case GgufValueType::kArray:
      return "array";
    case GgufValueType::kUint64:
      return "uint64";
    case GgufValueType::kInt64:
      return "int64";
    case GgufValueType::kFloat64:
      return "float64";
  }
  return "unknown";
}

std::uint64_t gguf_scalar_size(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
      return 8;
    case GgufValueType::kString:
    case GgufValueType::kArray:
      return 0;
  }
  return 0;
}

bool gguf_is_integer(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
      return true;
    default:
      return false;
  }
}

bool gguf_is_float(GgufValueType type) {
  return type == GgufValueType::kFloat32 || type == GgufValueType::kFloat64;
}

namespace {

struct GgmlTypeName {
  std::uint32_t id;
  const char* name;
};

// Every ggml type id the format has defined, so that a refusal can say what the
// file holds rather than only a number.
constexpr std::array<GgmlTypeName, 34> kGgmlNames = {{
    {0, "F32"},     {1, "F16"},    {2, "Q4_0"},     {3, "Q4_1"},    {6, "Q5_0"},     {7, "Q5_1"},
    {8, "Q8_0"},    {9, "Q8_1"},   {10, "Q2_K"},    {11, "Q3_K"},   {12, "Q4_K"},    {13, "Q5_K"},
    {14, "Q6_K"},   {15, "Q8_K"},  {16, "IQ2_XXS"}, {17, "IQ2_XS"}, {18, "IQ3_XXS"}, {19, "IQ1_S"},
    {20, "IQ4_NL"}, {21, "IQ3_S"}, {22, "IQ2_S"},   {23, "IQ4_XS"}, {24, "I8"},      {25, "I16"},
    {26, "I32"},    {27, "I64"},   {28, "F64"},     {29, "IQ1_M"},  {30, "BF16"},    {34, "TQ1_0"},
    {35, "TQ2_0"},  {39, "MXFP4"}, {40, "NVFP4"},   {41, "Q1_0"},
}};

}  // namespace

std::optional<DType> dtype_from_ggml_type(std::uint32_t ggml_type) {
  switch (ggml_type) {
    case kGgmlTypeF32:
      return DType::kF32;
    case kGgmlTypeF16:
      return DType::kF16;
    case kGgmlTypeQ4_0:
      return DType::kQ4_0;
    case kGgmlTypeQ4_1:
      return DType::kQ4_1;
    case kGgmlTypeQ8_0:
      return DType::kQ8_0;
    case kGgmlTypeQ4_K:
      return DType::kQ4_K;
    case kGgmlTypeQ6_K:
      return DType::kQ6_K;
    case kGgmlTypeBF16:
      return DType::kBF16;
    default:
      return std::nullopt;
  }
}

std::optional<std::uint32_t> ggml_type_from_dtype(DType type) {
  switch (type) {
    case DType::kF32:
      return kGgmlTypeF32;
    case DType::kF16:
      return kGgmlTypeF16;
    case DType::kBF16:
      return kGgmlTypeBF16;
    case DType::kQ8_0:
      return kGgmlTypeQ8_0;
    case DType::kQ4_0:
      return kGgmlTypeQ4_0;
    case DType::kQ4_1:
      return kGgmlTypeQ4_1;
    case DType::kQ4_K:
      return kGgmlTypeQ4_K;
    case DType::kQ6_K:
      return kGgmlTypeQ6_K;
    case DType::kQ4_G128:  // Conveyor's own formats: GGUF has no type for them
    case DType::kQ8_R:
    case DType::kF8_R:
    case DType::kS24_F16:
      return std::nullopt;
  }
  return std::nullopt;
}

std::string ggml_type_description(std::uint32_t ggml_type) {
  for (const auto& t : kGgmlNames) {
    if (t.id == ggml_type) return std::string(t.name) + " (" + std::to_string(ggml_type) + ")";
  }
  return "unknown (" + std::to_string(ggml_type) + ")";
}

}  // namespace conveyor
