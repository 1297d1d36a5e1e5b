// A bounds-checked little-endian cursor over the bytes of a GGUF file. Every read
// says what it is reading, so that a truncated file is reported as "truncated at
// offset 1234 reading the tensor count" rather than a crash or a silent zero.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"

namespace conveyor {

class GgufCursor {
 public:
  explicit GgufCursor(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}

  std::uint64_t offset() const { return offset_; }
  std::uint64_t size() const { return bytes_.size(); }
  std::uint64_t remaining() const { return bytes_.size() - offset_; }

  // The next `n` bytes; Error(kMalformed) when fewer remain.
  std::span<const std::uint8_t> take(std::uint64_t n, std::string_view what) {
    if (n > remaining()) {
      fail(ErrorCode::kMalformed, "truncated at offset " + std::to_string(offset_) + " reading " +
                                      std::string(what) + ": need " + std::to_string(n) +
                                      " bytes, " + std::to_string(remaining()) + " left");
    }
    auto out = bytes_.subspan(static_cast<std::size_t>(offset_), static_cast<std::size_t>(n));
    offset_ += n;
    return out;
  }

  template <typename T>
  T read(std::string_view what) {
    T value;
    std::memcpy(&value, take(sizeof(T), what).data(), sizeof(T));
    return value;
  }

  // A GGUF string: uint64 length, then that many bytes. The length is checked
  // against the bytes left before anything is taken, and against `max_bytes`.
  std::string_view read_string(std::string_view what, std::uint64_t max_bytes) {
    const std::uint64_t at = offset_;
    const auto length = read<std::uint64_t>(what);
    if (length > remaining()) {
      fail(ErrorCode::kMalformed, std::string(what) + " at offset " + std::to_string(at) +
                                      " declares " + std::to_string(length) + " bytes, but only " +
                                      std::to_string(remaining()) + " are left in the file");
    }
    if (length > max_bytes) {
      fail(ErrorCode::kOutOfRange, std::string(what) + " at offset " + std::to_string(at) + " is " +
                                       std::to_string(length) + " bytes long, above the limit of " +
                                       std::to_string(max_bytes));
    }
    auto bytes = take(length, what);
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }

 private:
  std::span<const std::uint8_t> bytes_;
  std::uint64_t offset_ = 0;
};

}  // namespace conveyor
