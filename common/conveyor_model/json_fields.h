// Strict, typed reading of the JSON objects a Conveyor model directory stores, and the
// encodings of values JSON has no literal for. Conveyor writes every field, so a field
// that is missing or of the wrong type means a damaged or foreign file: every error is
// Error(kMalformed) naming the field's path ("spec.rope_scaling.factor").
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace conveyor {

class JsonFieldReader {
 public:
  // Throws unless `object` is a JSON object; `where` prefixes every message.
  JsonFieldReader(const nlohmann::json& object, std::string where);

  const std::string& where() const { return where_; }
  // "where.key", for messages and nested readers.
  std::string path(std::string_view key) const;

  const nlohmann::json& field(std::string_view key) const;  // present, any type
  bool has(std::string_view key) const;
  std::int64_t integer(std::string_view key) const;
  double number(std::string_view key) const;  // finite
  bool boolean(std::string_view key) const;
  std::string string(std::string_view key) const;
  const nlohmann::json& array(std::string_view key) const;
  const nlohmann::json& object(std::string_view key) const;
  std::vector<std::int64_t> integers(std::string_view key) const;

 private:
  const nlohmann::json& object_;
  std::string where_;
};

// An integer; `what` names the value in the error.
std::int64_t json_integer(const nlohmann::json& value, const std::string& what);

// f32 values that may be infinite or NaN (SentencePiece scores, rope factors): a JSON
// number when finite, else the string "inf", "-inf" or "nan". The number is written
// with enough digits to read back the same float.
nlohmann::ordered_json float_to_json(float value);
float float_from_json(const nlohmann::json& value, const std::string& what);

// Byte strings that need not be UTF-8 (tokens of some vocabularies, which JSON strings
// cannot hold): a JSON string when valid UTF-8, else {"hex": "<two digits a byte>"}.
// Writers build ordered_json, so that files list their fields in a reading order.
nlohmann::ordered_json bytes_to_json(std::string_view bytes);
std::string bytes_from_json(const nlohmann::json& value, const std::string& what);

// Enumerations by name, through a table of (value, name): the name written for `value`,
// and the value a file names (Error(kMalformed) naming `what` for a name not in it).
template <typename E, std::size_t N>
std::string_view enum_name(const std::array<std::pair<E, std::string_view>, N>& table, E value) {
  for (const auto& [v, name] : table) {
    if (v == value) return name;
  }
  fail(ErrorCode::kInternal, "an enumeration value without a name in the model directory");
}

template <typename E, std::size_t N>
E enum_value(const std::array<std::pair<E, std::string_view>, N>& table, const std::string& name,
             const std::string& what) {
  for (const auto& [v, n] : table) {
    if (n == name) return v;
  }
  fail(ErrorCode::kMalformed, what + ": unknown value '" + name + "'");
}

}  // namespace conveyor
