#include "coordinator/batch/json_fields.h"

#include <cmath>
#include <limits>

#include "common/tokenizer/utf8.h"
#include "coordinator/batch/request_line.h"

namespace conveyor {
namespace {

// Built by appending: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string.
std::string range_text(std::int64_t min, std::int64_t max) {
  std::string text = "[";
  text += std::to_string(min);
  text += ", ";
  text += std::to_string(max);
  text += "]";
  return text;
}

[[noreturn]] void reject_integer(const std::string& path, const nlohmann::json& value,
                                 const std::string& range) {
  reject(request_error_code::kInvalidField, path + " must be an integer" +
                                                (range.empty() ? "" : " in " + range) + ", got " +
                                                describe_json(value));
}

// A float that holds a whole number, as some writers spell integers (100.0).
bool is_whole(double value) {
  return std::isfinite(value) && value == std::trunc(value);
}

}  // namespace

void reject(const char* code, const std::string& message) {
  throw LineRejection(code, message);
}

std::string describe_json(const nlohmann::json& value) {
  if (value.is_number()) return value.dump();
  return value.type_name();
}

std::string quote_excerpt(std::string_view text, std::size_t max_bytes) {
  std::size_t end = text.size();
  if (text.size() > max_bytes) {
    end = 0;
    while (end < text.size()) {
      const std::size_t next = end + utf8::examine(text, end).length;
      if (next > max_bytes) break;
      end = next;
    }
  }
  std::string quoted = "\"";
  quoted.append(text.substr(0, end));
  if (end < text.size()) quoted += "...";
  quoted += '"';
  return quoted;
}

std::int64_t read_integer(const nlohmann::json& value, const std::string& path, std::int64_t min,
                          std::int64_t max) {
  if (value.is_number_unsigned()) {
    // nlohmann reads every non-negative integer as unsigned.
    const auto number = value.get<std::uint64_t>();
    if (max < 0 || number > static_cast<std::uint64_t>(max) ||
        static_cast<std::int64_t>(number) < min) {
      reject_integer(path, value, range_text(min, max));
    }
    return static_cast<std::int64_t>(number);
  }
  if (value.is_number_integer()) {
    const auto number = value.get<std::int64_t>();
    if (number < min || number > max) reject_integer(path, value, range_text(min, max));
    return number;
  }
  if (value.is_number_float()) {
    const double number = value.get<double>();
    if (!is_whole(number)) reject_integer(path, value, "");
    // Compared as doubles first: casting a double outside int64's range is undefined.
    if (number < -0x1p63 || number >= 0x1p63) reject_integer(path, value, range_text(min, max));
    const auto whole = static_cast<std::int64_t>(number);
    if (whole < min || whole > max) reject_integer(path, value, range_text(min, max));
    return whole;
  }
  reject_integer(path, value, "");
}

const nlohmann::json* JsonFields::find(std::string_view name) const {
  const auto it = object_.find(std::string(name));
  if (it == object_.end() || it->is_null()) return nullptr;
  return &*it;
}

const nlohmann::json& JsonFields::require(std::string_view name) const {
  const nlohmann::json* value = find(name);
  if (value == nullptr) reject(request_error_code::kMissingField, "missing " + path(name));
  return *value;
}

std::optional<std::string> JsonFields::string(std::string_view name) const {
  const nlohmann::json* value = find(name);
  if (value == nullptr) return std::nullopt;
  if (!value->is_string()) {
    reject(request_error_code::kInvalidField,
           path(name) + " must be a string, got " + describe_json(*value));
  }
  return value->get<std::string>();
}

std::string JsonFields::require_string(std::string_view name) const {
  require(name);
  return *string(name);
}

std::optional<bool> JsonFields::boolean(std::string_view name) const {
  const nlohmann::json* value = find(name);
  if (value == nullptr) return std::nullopt;
  if (!value->is_boolean()) {
    reject(request_error_code::kInvalidField,
           path(name) + " must be a boolean, got " + describe_json(*value));
  }
  return value->get<bool>();
}

std::optional<double> JsonFields::number(std::string_view name) const {
  const nlohmann::json* value = find(name);
  if (value == nullptr) return std::nullopt;
  if (!value->is_number()) {
    reject(request_error_code::kInvalidField,
           path(name) + " must be a number, got " + describe_json(*value));
  }
  return value->get<double>();
}

std::optional<std::int64_t> JsonFields::integer(std::string_view name, std::int64_t min,
                                                std::int64_t max) const {
  const nlohmann::json* value = find(name);
  if (value == nullptr) return std::nullopt;
  return read_integer(*value, path(name), min, max);
}

std::optional<std::uint64_t> JsonFields::unsigned_integer(std::string_view name) const {
  const nlohmann::json* value = find(name);
  if (value == nullptr) return std::nullopt;
  const std::string range =
      "[0, " + std::to_string(std::numeric_limits<std::uint64_t>::max()) + "]";
  if (value->is_number_unsigned()) return value->get<std::uint64_t>();
  if (value->is_number_integer()) reject_integer(path(name), *value, range);  // negative
  if (value->is_number_float()) {
    const double number = value->get<double>();
    if (!is_whole(number)) reject_integer(path(name), *value, "");
    if (number < 0.0 || number >= 0x1p64) reject_integer(path(name), *value, range);
    return static_cast<std::uint64_t>(number);
  }
  reject_integer(path(name), *value, "");
}

}  // namespace conveyor
