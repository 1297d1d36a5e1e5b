// Helpers for the batch I/O tests: parsing lines that must succeed or fail, and
// scratch directories.
#pragma once

#include <stdlib.h>

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>

#include "coordinator/batch/request_line.h"

#include "tests/temp_dir.h"

namespace conveyor::testing {

// Parses a line that must be a request.
inline BatchRequest parse_ok(std::string_view line, std::int64_t line_number = 1,
                             const RequestLineLimits& limits = {}) {
  ParsedLine parsed = parse_request_line(line, line_number, limits);
  if (const auto* error = std::get_if<RequestError>(&parsed)) {
    FAIL_CHECK("expected a request, got " << error->code << ": " << error->message);
    return {};
  }
  REQUIRE(std::holds_alternative<BatchRequest>(parsed));
  return std::get<BatchRequest>(std::move(parsed));
}

// Parses a line that must be refused.
inline RequestError parse_error(std::string_view line, std::int64_t line_number = 1,
                                const RequestLineLimits& limits = {}) {
  ParsedLine parsed = parse_request_line(line, line_number, limits);
  if (!std::holds_alternative<RequestError>(parsed)) {
    FAIL_CHECK("expected an error for: " << line);
    return {};
  }
  return std::get<RequestError>(std::move(parsed));
}

// Expects `line` refused with `code` and a message that mentions `needle` and the line.
inline void expect_refused(std::string_view line, const std::string& code,
                           const std::string& needle, std::int64_t line_number = 7) {
  const RequestError error = parse_error(line, line_number);
  CAPTURE(line);
  CAPTURE(error.message);
  CHECK(error.code == code);
  CHECK(error.line_number == line_number);
  CHECK(error.message.rfind("line " + std::to_string(line_number) + ": ", 0) == 0);
  CHECK(error.message.find(needle) != std::string::npos);
}

inline void write_file(const std::filesystem::path& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace conveyor::testing
