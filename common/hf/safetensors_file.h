// One .safetensors file, memory-mapped and checked before anything reads it.
//
// Layout: 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [out, in], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value"}}
// then the data buffer; offsets are relative to the start of the data buffer.
//
// open() rejects, with a Status naming the file and the tensor:
//   kOutOfRange  header length above 100 MB or past the end of the file, offsets past the
//                end of the data, element counts or byte sizes that overflow 64 bits;
//   kMalformed   a file shorter than 8 bytes, invalid or non-object JSON, entries with
//                missing or mistyped fields, negative dimensions, end < begin, a byte
//                size that disagrees with dtype x shape, tensors that overlap or leave a
//                hole (the tensors must tile the data buffer exactly);
//   kUnsupported a dtype name that safetensors itself does not define (its size cannot
//                be checked).
// Dtypes that safetensors defines but the engine does not compute in (I64, F8_E4M3,
// ...) are checked like any other and listed; they are refused (kUnsupported) only when
// a caller turns such an entry into a TensorRef, i.e. when the model needs it. Old
// checkpoints carry such unused buffers, and refusing them would refuse good models.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "common/mapped_file.h"
#include "common/status.h"
#include "common/tensor_ref.h"

namespace conveyor {

// Largest header accepted, as in the reference safetensors implementation.
inline constexpr std::uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

struct SafetensorsEntry {
  std::string name;                     // as stored, e.g. "model.layers.0.mlp.up_proj.weight"
  std::string dtype_name;               // as stored, e.g. "BF16", "I64"
  std::optional<DType> dtype;           // set for F32, F16 and BF16 only
  std::vector<std::int64_t> shape;      // outermost first
  std::span<const std::uint8_t> bytes;  // inside the mapping
};

class SafetensorsFile {
 public:
  static Expected<SafetensorsFile> open(const std::string& path);

  SafetensorsFile(SafetensorsFile&&) noexcept = default;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept = default;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return file_.path(); }
  // Sorted by name.
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  // nullptr when absent.
  const SafetensorsEntry* find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  void parse();  // throws Error

  MappedFile file_;
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

// A view of the entry under `canonical_name`. Throws Error(kUnsupported) naming the
// tensor, its dtype and `origin` when the dtype is not F32, F16 or BF16.
TensorRef to_tensor_ref(const SafetensorsEntry& entry, const std::string& canonical_name,
                        const std::string& origin);

}  // namespace conveyor
