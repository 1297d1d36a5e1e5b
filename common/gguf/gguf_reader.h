// A GGUF file (versions 2 and 3, little-endian) opened over a memory map: header,
// typed metadata and tensor infos, every length, count, offset and size checked
// against the file before use. A hostile or damaged file gives an Error status;
// it never crashes the reader, and nothing is allocated in proportion to a
// declared size that the file's own bytes do not back.
//
// Error codes:
//   kMalformed    the file contradicts the format or itself: bad magic, truncation,
//                 lengths or counts larger than the file, offsets past its end,
//                 misaligned or overlapping tensors, duplicate names, bad alignment.
//   kOutOfRange   a value beyond sane limits: dimension products that overflow,
//                 names too long, arrays nested too deep, a huge alignment.
//   kUnsupported  valid GGUF that Conveyor cannot use: v1, big-endian files,
//                 ggml tensor types other than F32/F16/BF16/Q8_0/Q4_0/Q4_1/Q4_K/Q6_K.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/dtype.h"
#include "common/gguf/gguf_metadata.h"
#include "common/mapped_file.h"
#include "common/status.h"
#include "common/tensor_ref.h"

namespace conveyor {

// Limits beyond which a file is refused rather than trusted.
struct GgufLimits {
  static constexpr std::uint32_t kMaxDims = 4;  // GGML_MAX_DIMS
  static constexpr std::uint64_t kMaxTensors = 1 << 20;
  static constexpr std::uint64_t kMaxMetadataEntries = 1 << 20;
  static constexpr std::uint64_t kMaxStringArrayElements = 1 << 24;  // a 16M-token vocabulary
  static constexpr std::uint64_t kMaxTensorNameBytes = 256;
  static constexpr std::uint64_t kMaxKeyBytes = 65536;
  static constexpr std::uint32_t kMaxArrayDepth = 4;                 // arrays within arrays
  static constexpr std::uint64_t kMaxNestedArrayElements = 1 << 20;  // per array of arrays
  static constexpr std::uint64_t kMaxAlignment = 1 << 20;            // 1 MiB
  static constexpr std::uint64_t kDefaultAlignment = 32;
};

struct GgufTensorInfo {
  std::string name;
  std::uint32_t n_dims = 0;
  // ggml order: ne[0] is the innermost (row) length; unused dimensions are 1.
  std::array<std::int64_t, 4> ne = {1, 1, 1, 1};
  std::uint32_t ggml_type = 0;
  DType dtype = DType::kF32;
  std::uint64_t offset = 0;  // from the start of the data section
  std::uint64_t size_bytes = 0;

  std::int64_t elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  // Outermost first, as TensorRef wants: ne reversed, n_dims long.
  std::vector<std::int64_t> shape() const;
};

class GgufFile {
 public:
  // Maps and parses `path`. All failures come back as a Status whose message
  // starts with the path.
  static Expected<GgufFile> open(const std::string& path);
  // Parses an already mapped file, taking ownership of the map.
  static Expected<GgufFile> parse(MappedFile file);

  GgufFile(GgufFile&&) noexcept = default;
  GgufFile& operator=(GgufFile&&) noexcept = default;
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return file_.path(); }
  std::uint32_t version() const { return version_; }
  std::uint64_t alignment() const { return alignment_; }
  std::uint64_t data_offset() const { return data_offset_; }  // absolute, aligned
  std::uint64_t file_size() const { return file_.size(); }

  const GgufMetadata& metadata() const { return metadata_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  // nullptr when absent.
  const GgufTensorInfo* find_tensor(std::string_view name) const;

  // The tensor's bytes inside the map (already checked to lie within the file).
  std::span<const std::uint8_t> tensor_bytes(const GgufTensorInfo& info) const;
  // A view with the shape outermost first; valid while this GgufFile lives.
  TensorRef tensor_ref(const GgufTensorInfo& info) const;

 private:
  GgufFile() = default;
  friend class GgufParser;

  MappedFile file_;
  std::uint32_t version_ = 0;
  std::uint64_t alignment_ = GgufLimits::kDefaultAlignment;
  std::uint64_t data_offset_ = 0;
  GgufMetadata metadata_;
  std::vector<GgufTensorInfo> tensors_;
  // Keys are views of the names inside the map, which outlives every move.
  std::unordered_map<std::string_view, std::size_t> tensor_index_;
};

}  // namespace conveyor
