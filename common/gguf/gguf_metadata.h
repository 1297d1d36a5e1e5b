// GGUF metadata: the typed key/value pairs in a GGUF header, with accessors that
// check types. Asking for a string where the file holds an array (or for integers
// where it holds strings) is an error that names the key, never a reinterpretation.
//
// Values are views into the mapped file: a GgufMetadata is valid only while the
// GgufFile that produced it is alive.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/gguf/gguf_types.h"

namespace conveyor {

// One metadata value as stored in the file.
struct GgufValue {
  GgufValueType type = GgufValueType::kUint8;
  // Scalars: the value's little-endian bytes. Strings: the text. Arrays of fixed-size
  // scalars: the packed elements.
  std::span<const std::uint8_t> raw;
  // Arrays only.
  GgufValueType element_type = GgufValueType::kUint8;
  std::uint64_t count = 0;
  std::vector<std::string_view> strings;  // elements of an array of strings
  std::vector<GgufValue> arrays;          // elements of an array of arrays

  std::string_view as_string_view() const {
    return {reinterpret_cast<const char*>(raw.data()), raw.size()};
  }
  // "uint32", "string", "array of int32", "array of array of string"
  std::string type_description() const;
};

// Decode one fixed-size scalar of `type` from little-endian bytes. Callers check
// that `type` is an integer (or float) type and that `bytes` holds one.
// gguf_decode_int returns nullopt for a uint64 above INT64_MAX.
std::optional<std::int64_t> gguf_decode_int(GgufValueType type, const std::uint8_t* bytes);
double gguf_decode_float(GgufValueType type, const std::uint8_t* bytes);

// 'text', in the single quotes error messages put around keys and tensor names.
std::string gguf_quoted(std::string_view text);

class GgufMetadata {
 public:
  struct Entry {
    std::string_view key;
    GgufValue value;
  };

  // Throws Error(kMalformed) when `key` is already present: a key must mean one thing.
  void add(std::string_view key, GgufValue value);

  const std::vector<Entry>& entries() const { return entries_; }
  std::size_t size() const { return entries_.size(); }
  bool contains(std::string_view key) const { return find(key) != nullptr; }
  const GgufValue* find(std::string_view key) const;

  // Typed accessors. Each returns nullopt when the key is absent and throws
  // Error(kMalformed) naming the key and both types when it holds another type.
  //
  // Any integer type; a uint64 above INT64_MAX is Error(kOutOfRange).
  std::optional<std::int64_t> get_int(std::string_view key) const;
  // A token id stored under `key`: -1 when absent, Error(kMalformed) when outside
  // [0, vocab).
  std::int64_t get_token_id(std::string_view key, std::int64_t vocab) const;
  // float32 or float64.
  std::optional<double> get_float(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string_view> get_string(std::string_view key) const;
  // Arrays whose elements are of any integer type / float32 or float64 / string.
  std::optional<std::vector<std::int64_t>> get_int_array(std::string_view key) const;
  std::optional<std::vector<float>> get_float_array(std::string_view key) const;
  std::optional<std::vector<std::string_view>> get_string_array(std::string_view key) const;

  // As above, but an absent key is Error(kNotFound) naming it.
  std::int64_t require_int(std::string_view key) const;
  double require_float(std::string_view key) const;
  std::string_view require_string(std::string_view key) const;

 private:
  std::vector<Entry> entries_;
  std::unordered_map<std::string_view, std::size_t> index_;
};

}  // namespace conveyor
