// A small GGUF writer for tests: builds valid files and, by overriding any field,
// the hostile ones the reader must refuse. Follows the layout of gguf-py's
// GGUFWriter: header, metadata, tensor infos, padding to the alignment, data.
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tests/temp_dir.h"

namespace conveyor::testing {

// Little-endian byte sink.
class ByteWriter {
 public:
  template <typename T>
  ByteWriter& put(T value) {
    std::uint8_t raw[sizeof(T)];
    std::memcpy(raw, &value, sizeof(T));
    bytes_.insert(bytes_.end(), raw, raw + sizeof(T));
    return *this;
  }
  ByteWriter& u8(std::uint8_t v) { return put(v); }
  ByteWriter& u32(std::uint32_t v) { return put(v); }
  ByteWriter& u64(std::uint64_t v) { return put(v); }
  ByteWriter& str(std::string_view s) {
    u64(s.size());
    bytes_.insert(bytes_.end(), s.begin(), s.end());
    return *this;
  }
  ByteWriter& raw(const std::vector<std::uint8_t>& b) {
    bytes_.insert(bytes_.end(), b.begin(), b.end());
    return *this;
  }
  ByteWriter& pad_to(std::uint64_t alignment) {
    while (bytes_.size() % alignment != 0)
      bytes_.push_back(0);
    return *this;
  }
  const std::vector<std::uint8_t>& bytes() const { return bytes_; }
  std::vector<std::uint8_t> take() { return std::move(bytes_); }

 private:
  std::vector<std::uint8_t> bytes_;
};

// GGUF value type ids, spelled out here so the tests do not trust the reader's table.
namespace gguf_t {
constexpr std::uint32_t kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6,
                        kBool = 7, kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12;
}

class GgufBuilder {
 public:
  struct Tensor {
    std::string name;
    std::uint32_t ggml_type = 0;
    std::vector<std::uint64_t> ne;  // innermost first, as written
    std::vector<std::uint8_t> data;
    std::optional<std::uint64_t> offset;  // written instead of the computed one
  };

  std::uint32_t version = 3;
  std::uint64_t alignment = 32;                        // used to lay out the data
  std::optional<std::uint64_t> tensor_count_override;  // written instead of the real count
  std::optional<std::uint64_t> kv_count_override;
  bool pad_after_last_tensor = false;

  // Sets `key` to a value whose type id and encoded bytes are given; replaces an
  // existing key of that name.
  GgufBuilder& kv_raw(const std::string& key, std::uint32_t type, std::vector<std::uint8_t> value) {
    for (auto& kv : kvs_) {
      if (kv.key == key) {
        kv.type = type;
        kv.value = std::move(value);
        return *this;
      }
    }
    kvs_.push_back({key, type, std::move(value)});
    return *this;
  }
  // Appends `key` even when present (for duplicate-key tests).
  GgufBuilder& kv_append_raw(const std::string& key, std::uint32_t type,
                             std::vector<std::uint8_t> value) {
    kvs_.push_back({key, type, std::move(value)});
    return *this;
  }
  GgufBuilder& remove_kv(const std::string& key) {
    std::erase_if(kvs_, [&](const Kv& kv) { return kv.key == key; });
    return *this;
  }

  template <typename T>
  static std::vector<std::uint8_t> encode(T v) {
    return ByteWriter().put(v).take();
  }
  GgufBuilder& kv_u8(const std::string& k, std::uint8_t v) {
    return kv_raw(k, gguf_t::kU8, encode(v));
  }
  GgufBuilder& kv_u32(const std::string& k, std::uint32_t v) {
    return kv_raw(k, gguf_t::kU32, encode(v));
  }
  GgufBuilder& kv_i32(const std::string& k, std::int32_t v) {
    return kv_raw(k, gguf_t::kI32, encode(v));
  }
  GgufBuilder& kv_u64(const std::string& k, std::uint64_t v) {
    return kv_raw(k, gguf_t::kU64, encode(v));
  }
  GgufBuilder& kv_i64(const std::string& k, std::int64_t v) {
    return kv_raw(k, gguf_t::kI64, encode(v));
  }
  GgufBuilder& kv_f32(const std::string& k, float v) { return kv_raw(k, gguf_t::kF32, encode(v)); }
  GgufBuilder& kv_f64(const std::string& k, double v) { return kv_raw(k, gguf_t::kF64, encode(v)); }
  GgufBuilder& kv_bool(const std::string& k, bool v) {
    return kv_raw(k, gguf_t::kBool, encode(static_cast<std::uint8_t>(v)));
  }
  GgufBuilder& kv_string(const std::string& k, std::string_view v) {
    return kv_raw(k, gguf_t::kString, ByteWriter().str(v).take());
  }
  GgufBuilder& kv_string_array(const std::string& k, const std::vector<std::string>& v) {
    ByteWriter w;
    w.u32(gguf_t::kString).u64(v.size());
    for (const auto& s : v) {
      w.str(s);
    }
    return kv_raw(k, gguf_t::kArray, w.take());
  }
  template <typename T>
  GgufBuilder& kv_array(const std::string& k, std::uint32_t element_type, const std::vector<T>& v) {
    ByteWriter w;
    w.u32(element_type).u64(v.size());
    for (const auto& x : v) {
      w.put(x);
    }
    return kv_raw(k, gguf_t::kArray, w.take());
  }

  GgufBuilder& tensor(Tensor t) {
    std::erase_if(tensors_, [&](const Tensor& x) { return x.name == t.name; });
    tensors_.push_back(std::move(t));
    return *this;
  }
  // An f32 tensor of the given outermost-first shape filled with `fill`.
  GgufBuilder& tensor_f32(const std::string& name, std::vector<std::uint64_t> shape,
                          float fill = 0.0f) {
    std::uint64_t n = 1;
    for (auto d : shape) {
      n *= d;
    }
    ByteWriter w;
    for (std::uint64_t i = 0; i < n; ++i) {
      w.put(fill);
    }
    return tensor({name, 0, {shape.rbegin(), shape.rend()}, w.take(), std::nullopt});
  }
  GgufBuilder& remove_tensor(const std::string& name) {
    std::erase_if(tensors_, [&](const Tensor& x) { return x.name == name; });
    return *this;
  }
  std::vector<Tensor>& tensors() { return tensors_; }

  std::vector<std::uint8_t> build() const {
    ByteWriter w;
    w.u32(0x46554747).u32(version);
    w.u64(tensor_count_override.value_or(tensors_.size()));
    w.u64(kv_count_override.value_or(kvs_.size()));
    for (const auto& kv : kvs_) {
      w.str(kv.key).u32(kv.type).raw(kv.value);
    }
    std::vector<std::uint64_t> offsets;
    std::uint64_t next = 0;
    for (const auto& t : tensors_) {
      offsets.push_back(next);
      next += t.data.size();
      next = (next + alignment - 1) / alignment * alignment;
    }
    for (std::size_t i = 0; i < tensors_.size(); ++i) {
      const auto& t = tensors_[i];
      w.str(t.name).u32(static_cast<std::uint32_t>(t.ne.size()));
      for (auto d : t.ne) {
        w.u64(d);
      }
      w.u32(t.ggml_type).u64(t.offset.value_or(offsets[i]));
    }
    if (!tensors_.empty()) w.pad_to(alignment);
    for (std::size_t i = 0; i < tensors_.size(); ++i) {
      w.raw(tensors_[i].data);
      if (i + 1 < tensors_.size() || pad_after_last_tensor) w.pad_to(alignment);
    }
    return w.take();
  }

 private:
  struct Kv {
    std::string key;
    std::uint32_t type;
    std::vector<std::uint8_t> value;
  };
  std::vector<Kv> kvs_;
  std::vector<Tensor> tensors_;
};

}  // namespace conveyor::testing
