// Writing a .safetensors file (the format common/hf/safetensors_file.h reads):
//   8-byte little-endian header length N, N bytes of JSON
//     {"name": {"dtype": "U8", "shape": [rows, bytes], "data_offsets": [begin, end]}, ...,
//      "__metadata__": {"key": "value"}}
//   padded with spaces so that the data buffer starts on an 8-byte boundary, then the
//   data buffer, which the tensors tile exactly (no holes, as the format requires).
// Tensors are laid out by element size, largest first (as the reference
// implementation does), so that each starts aligned to its own element size.
//
// The layout is fixed when the file is created and each tensor's bytes may be written
// later, in any order: a compressor writes layer by layer and never holds the whole
// model.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace conveyor {

// One tensor to be written: its safetensors dtype ("F32", "F16", "BF16", "I8", "U8",
// "F8_E4M3") and shape; its byte size follows from them.
struct SafetensorsPlanEntry {
  std::string name;
  std::string dtype;
  std::vector<std::int64_t> shape;
};

// Bytes of one element of a safetensors dtype this writer supports; 0 for any other.
std::uint32_t safetensors_element_bytes(std::string_view dtype);

class SafetensorsWriter {
 public:
  // Creates (truncates) `path`, writes the header and sizes the file. Throws
  // Error(kInvalidArgument) for an empty or repeated name, an unsupported dtype, a
  // negative dimension or a size that overflows; Error(kIo) when the file cannot be
  // written.
  static SafetensorsWriter create(const std::string& path,
                                  std::vector<SafetensorsPlanEntry> entries,
                                  const std::map<std::string, std::string>& metadata = {});

  SafetensorsWriter(SafetensorsWriter&& other) noexcept;
  SafetensorsWriter& operator=(SafetensorsWriter&& other) noexcept;
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;
  ~SafetensorsWriter();

  // Writes the bytes of tensor `name` at its place. Throws Error(kInvalidArgument) for
  // an unknown name, a tensor written twice, or bytes of another length than its dtype
  // and shape need; Error(kIo) for a failed write.
  void write(const std::string& name, std::span<const std::uint8_t> bytes);

  // Checks that every tensor was written (Error(kInvalidArgument) naming the first
  // missing one), flushes the file to disk and closes it.
  void finish();

  const std::string& path() const { return path_; }
  std::uint64_t file_bytes() const { return file_bytes_; }

 private:
  struct Slot {
    std::uint64_t offset = 0;  // from the start of the file
    std::uint64_t bytes = 0;
    bool written = false;
  };
  SafetensorsWriter() = default;
  void close_quietly();

  int fd_ = -1;
  std::string path_;
  std::uint64_t file_bytes_ = 0;
  std::map<std::string, Slot> slots_;
};

// A whole file at once: every tensor with its bytes.
struct SafetensorsTensor {
  std::string name;
  std::string dtype;
  std::vector<std::int64_t> shape;
  std::span<const std::uint8_t> bytes;
};
void write_safetensors(const std::string& path, std::span<const SafetensorsTensor> tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace conveyor
