// Writes .safetensors files for tests: well-formed ones from a list of tensors, and
// hand-made ones from any header text, so that each malformation can be produced on
// purpose.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/hf/test_files.h"

namespace conveyor::testing {

// A file made of an 8-byte length, `header` and `data`. `declared_length` replaces the
// true header length, for files that lie about it.
inline std::vector<std::uint8_t> safetensors_bytes(
    std::string_view header, std::span<const std::uint8_t> data = {},
    std::optional<std::uint64_t> declared_length = std::nullopt) {
  const std::uint64_t length = declared_length.value_or(header.size());
  std::vector<std::uint8_t> out(8 + header.size() + data.size());
  std::memcpy(out.data(), &length, 8);  // little-endian hosts only, like the reader
  if (!header.empty()) std::memcpy(out.data() + 8, header.data(), header.size());
  if (!data.empty()) std::memcpy(out.data() + 8 + header.size(), data.data(), data.size());
  return out;
}

inline std::vector<std::uint8_t> f32_bytes(const std::vector<float>& values) {
  std::vector<std::uint8_t> out(values.size() * sizeof(float));
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

// Tensors laid out back to back in the order they were added, as safetensors writers do.
class SafetensorsBuilder {
 public:
  SafetensorsBuilder& add(std::string name, std::string dtype, std::vector<std::int64_t> shape,
                          std::span<const std::uint8_t> bytes) {
    tensors_.push_back({std::move(name), std::move(dtype), std::move(shape),
                        std::vector<std::uint8_t>(bytes.begin(), bytes.end())});
    return *this;
  }
  SafetensorsBuilder& add_f32(std::string name, std::vector<std::int64_t> shape,
                              const std::vector<float>& values) {
    return add(std::move(name), "F32", std::move(shape), f32_bytes(values));
  }
  SafetensorsBuilder& metadata(const std::string& key, const std::string& value) {
    metadata_[key] = value;
    return *this;
  }

  std::string header_json() const {
    nlohmann::json header = nlohmann::json::object();
    if (!metadata_.empty()) header["__metadata__"] = metadata_;
    std::uint64_t offset = 0;
    for (const auto& t : tensors_) {
      header[t.name] = {{"dtype", t.dtype},
                        {"shape", t.shape},
                        {"data_offsets", {offset, offset + t.bytes.size()}}};
      offset += t.bytes.size();
    }
    std::string text = header.dump();
    text.resize((text.size() + 7) / 8 * 8, ' ');  // writers pad the header to 8 bytes
    return text;
  }

  std::vector<std::uint8_t> bytes() const {
    std::vector<std::uint8_t> data;
    for (const auto& t : tensors_)
      data.insert(data.end(), t.bytes.begin(), t.bytes.end());
    return safetensors_bytes(header_json(), data);
  }

  void write(const std::filesystem::path& path) const { write_bytes(path, bytes()); }

 private:
  struct Tensor {
    std::string name;
    std::string dtype;
    std::vector<std::int64_t> shape;
    std::vector<std::uint8_t> bytes;
  };
  std::vector<Tensor> tensors_;
  nlohmann::json metadata_ = nlohmann::json::object();
};

}  // namespace conveyor::testing
