#include "common/conveyor_model/tensor_scheme.h"

#include <utility>

#include "common/conveyor_model/json_fields.h"
#include "common/conveyor_model/model_format.h"
#include "common/status.h"
#include "common/tensor_ref.h"

namespace conveyor {
namespace {

[[noreturn]] void malformed(const TensorScheme& s, const std::string& what) {
  fail(ErrorCode::kMalformed, "tensor '" + s.name + "': " + what);
}

const char* values_dtype(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
    case DType::kQ8_R:
      return "I8";
    case DType::kF8_R:
      return "F8_E4M3";
    default:
      return "U8";  // the type's blocks, as bytes
  }
}

const char* scales_dtype(DType dtype) {
  return dtype_row_scale_bytes(dtype) == 2 ? "F16" : "F32";
}

nlohmann::ordered_json location(const std::string& tensor) {
  if (tensor.empty()) return nullptr;
  return {{"file", kConveyorModelWeights}, {"tensor", tensor}};
}

std::string location_from_json(const nlohmann::json& json, const std::string& where) {
  if (json.is_null()) return {};
  const JsonFieldReader f(json, where);
  if (f.string("file") != kConveyorModelWeights) {
    fail(ErrorCode::kMalformed,
         f.path("file") + " is not " + std::string(kConveyorModelWeights) + ", the one data file");
  }
  std::string tensor = f.string("tensor");
  if (tensor.empty()) fail(ErrorCode::kMalformed, f.path("tensor") + " is empty");
  return tensor;
}

}  // namespace

std::int64_t scheme_group_size(DType dtype, const std::vector<std::int64_t>& shape) {
  if (dtype_is_row_scaled(dtype)) return shape.empty() ? 0 : shape.back();
  const std::uint32_t block = dtype_layout(dtype).block_elements;
  return block > 1 ? block : 0;
}

TensorScheme make_tensor_scheme(const std::string& name, DType dtype,
                                std::vector<std::int64_t> shape, std::string role) {
  TensorScheme s;
  s.name = name;
  s.dtype = dtype;
  s.group_size = scheme_group_size(dtype, shape);
  s.shape = std::move(shape);
  s.values = name;
  if (dtype_is_row_scaled(dtype)) s.scales = name + ".scales";
  s.role = std::move(role);
  return s;
}

std::vector<SafetensorsPlanEntry> stored_entries(const TensorScheme& s) {
  if (s.shape.empty()) malformed(s, "has no shape");
  std::int64_t elements = 1;
  for (std::int64_t d : s.shape) {
    if (d < 1) malformed(s, "has a dimension below 1: " + shape_string(s.shape));
    if (__builtin_mul_overflow(elements, d, &elements)) {
      malformed(s, "has more elements than 64 bits count: " + shape_string(s.shape));
    }
  }
  if (s.group_size != scheme_group_size(s.dtype, s.shape)) {
    malformed(s, "group size " + std::to_string(s.group_size) + " is not " +
                     std::to_string(scheme_group_size(s.dtype, s.shape)) + ", what " +
                     std::string(dtype_name(s.dtype)) + " has");
  }
  if (s.values.empty()) malformed(s, "names no values tensor");
  const bool row_scaled = dtype_is_row_scaled(s.dtype);
  if (row_scaled == s.scales.empty()) {
    malformed(s, row_scaled ? "names no scales tensor, which " + std::string(dtype_name(s.dtype)) +
                                  " needs"
                            : "names a scales tensor, which " + std::string(dtype_name(s.dtype)) +
                                  " does not have");
  }
  if (row_scaled && s.scales == s.values) malformed(s, "keeps values and scales in one tensor");

  const DTypeLayout layout = dtype_layout(s.dtype);
  std::vector<std::int64_t> values_shape = s.shape;
  if (layout.block_elements > 1) {
    const std::int64_t k = s.shape.back();
    if (k % layout.block_elements != 0) {
      malformed(s, "its rows of " + std::to_string(k) + " are not whole " +
                       std::string(dtype_name(s.dtype)) + " blocks of " +
                       std::to_string(layout.block_elements));
    }
    values_shape.back() = k / layout.block_elements * layout.block_bytes;
  }
  std::vector<SafetensorsPlanEntry> out;
  out.push_back({s.values, values_dtype(s.dtype), std::move(values_shape)});
  if (row_scaled) {
    out.push_back({s.scales, scales_dtype(s.dtype), {elements / s.shape.back()}});
  }
  return out;
}

nlohmann::ordered_json tensor_scheme_to_json(const TensorScheme& s) {
  return {{"name", s.name},
          {"dtype", dtype_name(s.dtype)},
          {"shape", s.shape},
          {"group_size", s.group_size},
          {"values", location(s.values)},
          {"scales", location(s.scales)},
          {"role", s.role},
          {"notes", nlohmann::ordered_json(s.notes)}};
}

TensorScheme tensor_scheme_from_json(const nlohmann::json& json, const std::string& where) {
  const JsonFieldReader f(json, where);
  TensorScheme s;
  s.name = f.string("name");
  if (s.name.empty()) fail(ErrorCode::kMalformed, f.path("name") + " is empty");
  const std::string type = f.string("dtype");
  const std::optional<DType> dtype = dtype_from_name(type);
  if (!dtype) {
    fail(ErrorCode::kUnsupported, where + ": tensor '" + s.name + "' has dtype '" + type +
                                      "', which this build does not know");
  }
  s.dtype = *dtype;
  s.shape = f.integers("shape");
  s.group_size = f.integer("group_size");
  s.values = location_from_json(f.field("values"), f.path("values"));
  s.scales = location_from_json(f.field("scales"), f.path("scales"));
  s.role = f.string("role");
  s.notes = f.object("notes");
  try {
    stored_entries(s);
  } catch (const Error& e) {
    fail(e.code(), where + ": " + e.what());
  }
  return s;
}

}  // namespace conveyor
