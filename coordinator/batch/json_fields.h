// Typed reads of a request line's JSON fields. Every failure is a LineRejection whose
// message names the field by its path ("body.messages[2].content") and says what was
// expected and what was found, so that a user can fix the line from the message alone.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace conveyor {

// Why a line is refused: one of request_error_code's codes and a message without the
// "line N: " prefix, which parse_request_line adds. Thrown only inside the request
// parser, which turns it into a RequestError.
class LineRejection : public std::runtime_error {
 public:
  LineRejection(const char* code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  const char* code() const { return code_; }

 private:
  const char* code_;
};

[[noreturn]] void reject(const char* code, const std::string& message);

// "string", "boolean", ... or, for a number, the number itself: what a message says it got.
std::string describe_json(const nlohmann::json& value);

// `text` cut to at most `max_bytes` on a UTF-8 boundary, with "..." when cut: for
// quoting user-supplied strings in messages without echoing megabytes.
std::string quote_excerpt(std::string_view text, std::size_t max_bytes = 64);

// An integer in [min, max]: a JSON integer, or a float with no fractional part (100.0).
std::int64_t read_integer(const nlohmann::json& value, const std::string& path, std::int64_t min,
                          std::int64_t max);

// The fields of one JSON object, named in messages as `prefix` + name ("body." or "").
class JsonFields {
 public:
  JsonFields(const nlohmann::json& object, std::string prefix)
      : object_(object), prefix_(std::move(prefix)) {}

  std::string path(std::string_view name) const { return prefix_ + std::string(name); }

  // nullptr when the field is absent or JSON null: both mean "not given".
  const nlohmann::json* find(std::string_view name) const;
  bool has(std::string_view name) const { return find(name) != nullptr; }
  // The field's value; missing_field when it is not given.
  const nlohmann::json& require(std::string_view name) const;

  std::optional<std::string> string(std::string_view name) const;
  std::string require_string(std::string_view name) const;
  std::optional<bool> boolean(std::string_view name) const;
  std::optional<double> number(std::string_view name) const;
  std::optional<std::int64_t> integer(std::string_view name, std::int64_t min,
                                      std::int64_t max) const;
  // 0 .. 2^64-1, for seeds.
  std::optional<std::uint64_t> unsigned_integer(std::string_view name) const;

 private:
  const nlohmann::json& object_;
  std::string prefix_;
};

}  // namespace conveyor
