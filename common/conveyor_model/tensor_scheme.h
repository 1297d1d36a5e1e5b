// How one tensor of a Conveyor model directory is stored: its element type (any of
// common/dtype.h), its logical shape (outermost first, as TensorRef), how many values
// share a scale, and the safetensors entries that hold its values and row scales.
//
// The storage of each type in model.safetensors:
//   f32, f16, bf16              as F32, F16, BF16 with the tensor's shape;
//   block types (q4_g128, q4_1, q8_0, q4_k, ...)
//                               as U8: its blocks, [..., k / block_elements * block_bytes];
//   q8_r                        as I8 [..., k] plus F16 [rows] "<name>.scales";
//   f8_r                        as F8_E4M3 [..., k] plus F32 [rows] "<name>.scales".
// So every reader of safetensors can list (and size-check) the file, and nothing in it
// is reinterpreted without this scheme.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/conveyor_model/safetensors_writer.h"
#include "common/dtype.h"

namespace conveyor {

struct TensorScheme {
  std::string name;  // canonical (GGUF) name
  DType dtype = DType::kF32;
  std::vector<std::int64_t> shape;  // logical, outermost first
  // Values that share one scale: block_elements for a block type, the row (the
  // innermost dimension) for a row-scaled type, 0 for plain floats.
  std::int64_t group_size = 0;
  std::string values;  // safetensors entry holding the values
  std::string scales;  // ... the row scales; empty unless the type is row-scaled
  // What the tensor is ("embedding", "norm", "linear", "bias", "output", "other") and
  // how it was made ({"method": "int4", "awq": {...}, "pruning": {...}}): for people and
  // tools; loading reads neither.
  std::string role;
  nlohmann::json notes = nlohmann::json::object();
};

// group_size as defined above.
std::int64_t scheme_group_size(DType dtype, const std::vector<std::int64_t>& shape);

// A scheme for a tensor stored under its own name (and "<name>.scales"), with its
// group size filled in.
TensorScheme make_tensor_scheme(const std::string& name, DType dtype,
                                std::vector<std::int64_t> shape, std::string role);

// The safetensors entries of the scheme: values first, then scales where the type has
// them. Throws Error(kMalformed) naming the tensor when the shape is empty, has a
// dimension below 1, an innermost dimension that is not a whole number of blocks, or
// when the group size or the entry names disagree with the type.
std::vector<SafetensorsPlanEntry> stored_entries(const TensorScheme& scheme);

nlohmann::ordered_json tensor_scheme_to_json(const TensorScheme& scheme);
// Throws Error(kMalformed) naming `where` for a missing or mistyped field or the
// inconsistencies stored_entries() refuses, and Error(kUnsupported) for a dtype name
// this build does not know.
TensorScheme tensor_scheme_from_json(const nlohmann::json& json, const std::string& where);

}  // namespace conveyor
