#include "common/gguf/gguf_metadata.h"

#include <bit>
#include <cstring>
#include <limits>

#include "common/status.h"

namespace conveyor {
namespace {

template <typename T>
T load_le(const std::uint8_t* p) {
  // GGUF v2/v3 as read here is little-endian, as is every host Conveyor targets.
  static_assert(std::endian::native == std::endian::little);
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

[[noreturn]] void wrong_type(std::string_view key, const GgufValue& value, const char* expected) {
  fail(ErrorCode::kMalformed, "metadata key " + gguf_quoted(key) + " is " +
                                  value.type_description() + ", expected " + expected);
}

std::int64_t checked_int(std::string_view key, GgufValueType type, const std::uint8_t* bytes) {
  const auto v = gguf_decode_int(type, bytes);
  if (!v) {
    fail(ErrorCode::kOutOfRange,
         "metadata key " + gguf_quoted(key) + " holds an integer above INT64_MAX");
  }
  return *v;
}

}  // namespace

std::string gguf_quoted(std::string_view text) {
  // Appended piecewise: GCC 12's -Wrestrict misfires on "'" + std::string(text).
  std::string out;
  out.reserve(text.size() + 2);
  out.append(1, '\'').append(text).append(1, '\'');
  return out;
}

std::string GgufValue::type_description() const {
  if (type != GgufValueType::kArray) return gguf_value_type_name(type);
  std::string out = "array of ";
  if (element_type == GgufValueType::kArray) {
    // Nested arrays may mix element types; describe the first when there is one.
    return out + (arrays.empty() ? std::string("array") : arrays.front().type_description());
  }
  return out + gguf_value_type_name(element_type);
}

std::optional<std::int64_t> gguf_decode_int(GgufValueType type, const std::uint8_t* bytes) {
  switch (type) {
    case GgufValueType::kUint8:
      return load_le<std::uint8_t>(bytes);
    case GgufValueType::kInt8:
      return load_le<std::int8_t>(bytes);
    case GgufValueType::kUint16:
      return load_le<std::uint16_t>(bytes);
    case GgufValueType::kInt16:
      return load_le<std::int16_t>(bytes);
    case GgufValueType::kUint32:
      return load_le<std::uint32_t>(bytes);
    case GgufValueType::kInt32:
      return load_le<std::int32_t>(bytes);
    case GgufValueType::kInt64:
      return load_le<std::int64_t>(bytes);
    case GgufValueType::kUint64: {
      const auto v = load_le<std::uint64_t>(bytes);
      if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return std::nullopt;
      }
      return static_cast<std::int64_t>(v);
    }
    default:
      fail(ErrorCode::kInternal, "gguf_decode_int on a non-integer type");
  }
}

double gguf_decode_float(GgufValueType type, const std::uint8_t* bytes) {
  if (type == GgufValueType::kFloat32) return load_le<float>(bytes);
  if (type == GgufValueType::kFloat64) return load_le<double>(bytes);
  fail(ErrorCode::kInternal, "gguf_decode_float on a non-float type");
}

void GgufMetadata::add(std::string_view key, GgufValue value) {
  if (index_.count(key) != 0) {
    fail(ErrorCode::kMalformed, "duplicate metadata key " + gguf_quoted(key));
  }
  index_.emplace(key, entries_.size());
  entries_.push_back(Entry{key, std::move(value)});
}

const GgufValue* GgufMetadata::find(std::string_view key) const {
  const auto it = index_.find(key);
  return it == index_.end() ? nullptr : &entries_[it->second].value;
}

std::optional<std::int64_t> GgufMetadata::get_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (!gguf_is_integer(v->type)) wrong_type(key, *v, "an integer");
  return checked_int(key, v->type, v->raw.data());
}

std::int64_t GgufMetadata::get_token_id(std::string_view key, std::int64_t vocab) const {
  const auto id = get_int(key);
  if (!id) return -1;
  if (*id < 0 || *id >= vocab) {
    fail(ErrorCode::kMalformed, std::string(key) + " " + std::to_string(*id) +
                                    " is outside the vocabulary of " + std::to_string(vocab) +
                                    " tokens");
  }
  return *id;
}

std::optional<double> GgufMetadata::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (!gguf_is_float(v->type)) wrong_type(key, *v, "a float");
  return gguf_decode_float(v->type, v->raw.data());
}

std::optional<bool> GgufMetadata::get_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->type != GgufValueType::kBool) wrong_type(key, *v, "a bool");
  return v->raw[0] != 0;
}

std::optional<std::string_view> GgufMetadata::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->type != GgufValueType::kString) wrong_type(key, *v, "a string");
  return v->as_string_view();
}

std::optional<std::vector<std::int64_t>> GgufMetadata::get_int_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->type != GgufValueType::kArray || !gguf_is_integer(v->element_type)) {
    wrong_type(key, *v, "an array of integers");
  }
  const std::uint64_t size = gguf_scalar_size(v->element_type);
  std::vector<std::int64_t> out;
  out.reserve(v->count);  // the reader has checked count * size against the file
  for (std::uint64_t i = 0; i < v->count; ++i) {
    out.push_back(checked_int(key, v->element_type, v->raw.data() + i * size));
  }
  return out;
}

std::optional<std::vector<float>> GgufMetadata::get_float_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->type != GgufValueType::kArray || !gguf_is_float(v->element_type)) {
    wrong_type(key, *v, "an array of floats");
  }
  const std::uint64_t size = gguf_scalar_size(v->element_type);
  std::vector<float> out;
  out.reserve(v->count);
  for (std::uint64_t i = 0; i < v->count; ++i) {
    out.push_back(static_cast<float>(gguf_decode_float(v->element_type, v->raw.data() + i * size)));
  }
  return out;
}

std::optional<std::vector<std::string_view>> GgufMetadata::get_string_array(
    std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->type != GgufValueType::kArray || v->element_type != GgufValueType::kString) {
    wrong_type(key, *v, "an array of strings");
  }
  return v->strings;
}

std::int64_t GgufMetadata::require_int(std::string_view key) const {
  const auto v = get_int(key);
  if (!v) fail(ErrorCode::kNotFound, "required metadata key " + gguf_quoted(key) + " is missing");
  return *v;
}

double GgufMetadata::require_float(std::string_view key) const {
  const auto v = get_float(key);
  if (!v) fail(ErrorCode::kNotFound, "required metadata key " + gguf_quoted(key) + " is missing");
  return *v;
}

std::string_view GgufMetadata::require_string(std::string_view key) const {
  const auto v = get_string(key);
  if (!v) fail(ErrorCode::kNotFound, "required metadata key " + gguf_quoted(key) + " is missing");
  return *v;
}

}  // namespace conveyor
