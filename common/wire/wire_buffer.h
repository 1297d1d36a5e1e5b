// The byte layer of Conveyor's binary messages: little-endian fixed-width integers,
// floats and length-prefixed strings and arrays. WireWriter appends; WireReader reads
// with a bounds check on every field, so a truncated or hostile message is an error
// (kMalformed, naming the field), never a crash or an allocation its size does not
// justify.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "common/status.h"

namespace conveyor {

class WireWriter {
 public:
  template <typename T>
  void put(T value) {
    static_assert(std::is_arithmetic_v<T>);
    static_assert(std::endian::native == std::endian::little, "the wire is little-endian");
    const auto at = bytes_.size();
    bytes_.resize(at + sizeof(T));
    std::memcpy(bytes_.data() + at, &value, sizeof(T));
  }
  void put_bool(bool value) { put<std::uint8_t>(value ? 1 : 0); }
  void put_string(std::string_view text);
  // A count (u32) then the elements.
  template <typename T>
  void put_array(const std::vector<T>& values) {
    put_count(values.size());
    for (const T& v : values)
      put<T>(v);
  }
  void put_count(std::size_t count);

  const std::vector<std::uint8_t>& bytes() const { return bytes_; }
  std::vector<std::uint8_t> take() { return std::move(bytes_); }

 private:
  std::vector<std::uint8_t> bytes_;
};

class WireReader {
 public:
  explicit WireReader(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}

  // Each throws Error(kMalformed) naming `field` when the bytes run out or a value is
  // out of its range.
  template <typename T>
  T get(const char* field) {
    static_assert(std::is_arithmetic_v<T>);
    need(sizeof(T), field);
    T value;
    std::memcpy(&value, bytes_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return value;
  }
  bool get_bool(const char* field);
  std::string get_string(const char* field, std::size_t max_bytes);
  // A count of elements of at least `min_element_bytes` each: refused when above
  // `max_count` or when the remaining bytes could not hold that many, so a forged
  // count never allocates more than the message's own size.
  std::size_t get_count(const char* field, std::size_t min_element_bytes, std::size_t max_count);
  template <typename T>
  std::vector<T> get_array(const char* field, std::size_t max_count) {
    const std::size_t n = get_count(field, sizeof(T), max_count);
    std::vector<T> values(n);
    for (std::size_t i = 0; i < n; ++i)
      values[i] = get<T>(field);
    return values;
  }

  std::size_t remaining() const { return bytes_.size() - at_; }
  // Throws Error(kMalformed) when bytes are left over: a message is read whole.
  void expect_end(const char* what) const;

 private:
  void need(std::size_t n, const char* field) const;

  std::span<const std::uint8_t> bytes_;
  std::size_t at_ = 0;
};

}  // namespace conveyor
