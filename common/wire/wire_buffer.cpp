#include "common/wire/wire_buffer.h"

#include <limits>

namespace conveyor {

void WireWriter::put_string(std::string_view text) {
  put_count(text.size());
  if (text.empty()) return;  // a default string_view's data() is null: no memcpy from it
  const auto at = bytes_.size();
  bytes_.resize(at + text.size());
  std::memcpy(bytes_.data() + at, text.data(), text.size());
}

void WireWriter::put_count(std::size_t count) {
  if (count > std::numeric_limits<std::uint32_t>::max()) {
    fail(ErrorCode::kOutOfRange, "wire: a count of " + std::to_string(count) + " exceeds 32 bits");
  }
  put<std::uint32_t>(static_cast<std::uint32_t>(count));
}

void WireReader::need(std::size_t n, const char* field) const {
  if (n > remaining()) {
    fail(ErrorCode::kMalformed, std::string("wire: message ends inside ") + field);
  }
}

bool WireReader::get_bool(const char* field) {
  const auto v = get<std::uint8_t>(field);
  if (v > 1) fail(ErrorCode::kMalformed, std::string("wire: ") + field + " is not a boolean");
  return v == 1;
}

std::string WireReader::get_string(const char* field, std::size_t max_bytes) {
  const std::size_t n = get_count(field, 1, max_bytes);
  std::string text(reinterpret_cast<const char*>(bytes_.data() + at_), n);
  at_ += n;
  return text;
}

std::size_t WireReader::get_count(const char* field, std::size_t min_element_bytes,
                                  std::size_t max_count) {
  const std::size_t n = get<std::uint32_t>(field);
  if (n > max_count) {
    fail(ErrorCode::kMalformed, std::string("wire: ") + field + " has " + std::to_string(n) +
                                    " elements, more than " + std::to_string(max_count));
  }
  if (min_element_bytes > 0 && n > remaining() / min_element_bytes) {
    fail(ErrorCode::kMalformed, std::string("wire: ") + field + " claims " + std::to_string(n) +
                                    " elements; the message holds " + std::to_string(remaining()) +
                                    " more bytes");
  }
  return n;
}

void WireReader::expect_end(const char* what) const {
  if (remaining() != 0) {
    fail(ErrorCode::kMalformed,
         std::string("wire: ") + std::to_string(remaining()) + " bytes left after " + what);
  }
}

}  // namespace conveyor
