#include "common/conveyor_model/json_fields.h"

#include <cmath>
#include <limits>

#include "common/status.h"
#include "common/tokenizer/utf8.h"

namespace conveyor {
namespace {

[[noreturn]] void malformed(const std::string& message) {
  fail(ErrorCode::kMalformed, message);
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

JsonFieldReader::JsonFieldReader(const nlohmann::json& object, std::string where)
    : object_(object), where_(std::move(where)) {
  if (!object_.is_object()) malformed(where_ + " is not a JSON object");
}

std::string JsonFieldReader::path(std::string_view key) const {
  return where_ + "." + std::string(key);
}

bool JsonFieldReader::has(std::string_view key) const {
  return object_.find(key) != object_.end();
}

const nlohmann::json& JsonFieldReader::field(std::string_view key) const {
  const auto it = object_.find(key);
  if (it == object_.end()) malformed(path(key) + " is missing");
  return *it;
}

std::int64_t JsonFieldReader::integer(std::string_view key) const {
  return json_integer(field(key), path(key));
}

double JsonFieldReader::number(std::string_view key) const {
  const nlohmann::json& v = field(key);
  if (!v.is_number()) malformed(path(key) + " is not a number");
  const double d = v.get<double>();
  if (!std::isfinite(d)) malformed(path(key) + " is not finite");
  return d;
}

bool JsonFieldReader::boolean(std::string_view key) const {
  const nlohmann::json& v = field(key);
  if (!v.is_boolean()) malformed(path(key) + " is not true or false");
  return v.get<bool>();
}

std::string JsonFieldReader::string(std::string_view key) const {
  const nlohmann::json& v = field(key);
  if (!v.is_string()) malformed(path(key) + " is not a string");
  return v.get<std::string>();
}

const nlohmann::json& JsonFieldReader::array(std::string_view key) const {
  const nlohmann::json& v = field(key);
  if (!v.is_array()) malformed(path(key) + " is not an array");
  return v;
}

const nlohmann::json& JsonFieldReader::object(std::string_view key) const {
  const nlohmann::json& v = field(key);
  if (!v.is_object()) malformed(path(key) + " is not an object");
  return v;
}

std::vector<std::int64_t> JsonFieldReader::integers(std::string_view key) const {
  const nlohmann::json& a = array(key);
  std::vector<std::int64_t> out;
  out.reserve(a.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    out.push_back(json_integer(a[i], path(key) + "[" + std::to_string(i) + "]"));
  return out;
}

std::int64_t json_integer(const nlohmann::json& value, const std::string& what) {
  if (value.is_number_unsigned()) {
    const auto u = value.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      fail(ErrorCode::kOutOfRange, what + " is too large");
    }
    return static_cast<std::int64_t>(u);
  }
  if (!value.is_number_integer()) malformed(what + " is not an integer");
  return value.get<std::int64_t>();
}

nlohmann::ordered_json float_to_json(float value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  // As a double: nlohmann writes doubles with 17 significant digits, which read back
  // into the same double, hence the same float.
  return static_cast<double>(value);
}

float float_from_json(const nlohmann::json& value, const std::string& what) {
  if (value.is_number()) {
    const double d = value.get<double>();
    // A written float reads back exactly; a larger number is not one of ours.
    if (std::isfinite(d) && std::fabs(d) > static_cast<double>(std::numeric_limits<float>::max())) {
      malformed(what + " is outside the range of f32");
    }
    return static_cast<float>(d);
  }
  if (value.is_string()) {
    const auto& s = value.get_ref<const std::string&>();
    if (s == "inf") return std::numeric_limits<float>::infinity();
    if (s == "-inf") return -std::numeric_limits<float>::infinity();
    if (s == "nan") return std::numeric_limits<float>::quiet_NaN();
  }
  malformed(what + " is not a number, \"inf\", \"-inf\" or \"nan\"");
}

nlohmann::ordered_json bytes_to_json(std::string_view bytes) {
  if (utf8::is_valid(bytes)) return std::string(bytes);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    hex += kDigits[b >> 4];
    hex += kDigits[b & 15];
  }
  return nlohmann::ordered_json{{"hex", hex}};
}

std::string bytes_from_json(const nlohmann::json& value, const std::string& what) {
  if (value.is_string()) return value.get<std::string>();
  if (!value.is_object() || value.size() != 1 || !value.contains("hex") ||
      !value.at("hex").is_string()) {
    malformed(what + " is neither a string nor {\"hex\": \"...\"}");
  }
  const auto& hex = value.at("hex").get_ref<const std::string&>();
  if (hex.size() % 2 != 0) malformed(what + ": odd number of hex digits");
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = hex_digit(hex[i]);
    const int lo = hex_digit(hex[i + 1]);
    if (hi < 0 || lo < 0) malformed(what + ": '" + hex.substr(i, 2) + "' is not a hex byte");
    out += static_cast<char>(hi * 16 + lo);
  }
  return out;
}

}  // namespace conveyor
