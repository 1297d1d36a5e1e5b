#include "coordinator/batch/request_line.h"

#include <string>

#include <nlohmann/json.hpp>

#include "common/json_depth.h"
#include "common/tokenizer/utf8.h"
#include "coordinator/batch/json_fields.h"
#include "coordinator/batch/request_body.h"

namespace conveyor {
namespace {

using nlohmann::json;
namespace code = request_error_code;

// JSON's whitespace: a line of only these is blank.
// Byte offset of the first byte that does not start a well-formed UTF-8 sequence,
// or npos when the whole text is valid.
std::size_t first_invalid_utf8(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (static_cast<unsigned char>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const utf8::Sequence sequence = utf8::examine(text, pos);
    if (!sequence.valid) return pos;
    pos += sequence.length;
  }
  return std::string_view::npos;
}

// nlohmann's message without its "[json.exception.parse_error.101] parse error at
// line 1, column 12: " preamble (a batch line is always line 1 to the parser), with
// the byte offset instead, and cut so that a long token does not flood the message.
std::string parse_error_detail(const json::parse_error& error) {
  std::string_view what = error.what();
  const std::size_t column = what.find("column ");
  if (column != std::string_view::npos) {
    const std::size_t colon = what.find(": ", column);
    if (colon != std::string_view::npos) what.remove_prefix(colon + 2);
  }
  std::string detail = quote_excerpt(what, 160);
  detail = detail.substr(1, detail.size() - 2);  // without quote_excerpt's quotes
  return "at byte " + std::to_string(error.byte) + ": " + detail;
}

// Other failures of the parser, such as a number beyond double's range ("1e999",
// reported as out_of_range and without an offset): the message without its
// "[json.exception...] " tag.
std::string exception_detail(const json::exception& error) {
  std::string_view what = error.what();
  if (const std::size_t tag_end = what.find("] "); tag_end != std::string_view::npos) {
    what.remove_prefix(tag_end + 2);
  }
  std::string detail = quote_excerpt(what, 160);
  return detail.substr(1, detail.size() - 2);  // without quote_excerpt's quotes
}

std::string read_custom_id(const JsonFields& fields, const RequestLineLimits& limits) {
  const std::string id = fields.require_string("custom_id");
  if (id.empty()) reject(code::kInvalidField, "custom_id is empty");
  if (id.size() > limits.max_custom_id_bytes) {
    reject(code::kInvalidField, "custom_id is " + std::to_string(id.size()) +
                                    " bytes long; at most " +
                                    std::to_string(limits.max_custom_id_bytes) + " are allowed");
  }
  return id;
}

Endpoint read_url(const JsonFields& fields) {
  const std::string url = fields.require_string("url");
  if (url == "/v1/chat/completions") return Endpoint::kChatCompletions;
  if (url == "/v1/completions") return Endpoint::kCompletions;
  reject(code::kUnsupportedUrl, "url " + quote_excerpt(url) +
                                    " is not supported; use /v1/chat/completions or "
                                    "/v1/completions");
}

// {"custom_id", "method", "url", "body"}. `custom_id` is set as soon as it is read, so
// that later errors carry it.
void read_openai_row(const json& row, const RequestLineLimits& limits, BatchRequest& request,
                     std::string& custom_id) {
  const JsonFields fields(row, "");
  custom_id = read_custom_id(fields, limits);
  request.custom_id = custom_id;
  const std::string method = fields.require_string("method");
  if (method != "POST") {
    reject(code::kInvalidField, "method is " + quote_excerpt(method) + "; batch requests use POST");
  }
  request.endpoint = read_url(fields);
  const json& body = fields.require("body");
  if (!body.is_object()) {
    reject(code::kInvalidField, "body must be an object, got " + describe_json(body));
  }
  read_request_body(body, "body.", limits, request);
}

// {"messages": [...], ...} or {"prompt": ..., ...}: the row is its own body.
void read_convenience_row(const json& row, const RequestLineLimits& limits, BatchRequest& request,
                          std::string& custom_id) {
  const JsonFields fields(row, "");
  const bool has_messages = fields.has("messages");
  const bool has_prompt = fields.has("prompt");
  if (fields.has("custom_id")) {
    custom_id = read_custom_id(fields, limits);
  } else {
    custom_id = "request-" + std::to_string(request.line_number);
  }
  request.custom_id = custom_id;
  if (has_messages && has_prompt) {
    reject(code::kInvalidField,
           "a row without body gives either messages (chat) or prompt (completions), not both");
  }
  if (!has_messages && !has_prompt) {
    reject(code::kMissingField, "missing body (or, for a row without body, messages or prompt)");
  }
  request.endpoint = has_messages ? Endpoint::kChatCompletions : Endpoint::kCompletions;
  read_request_body(row, "", limits, request);
}

}  // namespace

bool is_blank_line(std::string_view line) {
  return line.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

RequestError line_too_long(std::int64_t line_number, std::uint64_t length,
                           const RequestLineLimits& limits) {
  return line_error(line_number, "line-" + std::to_string(line_number), code::kLineTooLong,
                    "the line is " + std::to_string(length) + " bytes long; at most " +
                        std::to_string(limits.max_line_bytes) + " are allowed");
}

ParsedLine parse_request_line(std::string_view line, std::int64_t line_number,
                              const RequestLineLimits& limits) {
  std::string custom_id = "line-" + std::to_string(line_number);
  if (line.size() > limits.max_line_bytes) return line_too_long(line_number, line.size(), limits);
  if (is_blank_line(line)) return BlankLine{line_number};
  if (const std::size_t bad = first_invalid_utf8(line); bad != std::string_view::npos) {
    return line_error(line_number, custom_id, code::kInvalidUtf8,
                      "invalid UTF-8 at byte offset " + std::to_string(bad));
  }
  if (json_nests_deeper_than(line, limits.max_depth)) {
    return line_error(line_number, custom_id, code::kInvalidJson,
                      "JSON nests deeper than " + std::to_string(limits.max_depth) + " levels");
  }
  json row;
  try {
    row = json::parse(line);
  } catch (const json::parse_error& error) {
    return line_error(line_number, custom_id, code::kInvalidJson,
                      "invalid JSON " + parse_error_detail(error));
  } catch (const json::exception& error) {
    return line_error(line_number, custom_id, code::kInvalidJson,
                      "invalid JSON: " + exception_detail(error));
  }
  if (!row.is_object()) {
    return line_error(line_number, custom_id, code::kInvalidJson,
                      "a batch line must be a JSON object, got " + describe_json(row));
  }

  BatchRequest request;
  request.line_number = line_number;
  try {
    // Any envelope field marks an OpenAI row, so that a row that forgot to nest its
    // request in "body" hears that, rather than being half-read as a convenience row.
    if (row.contains("body") || row.contains("method") || row.contains("url")) {
      read_openai_row(row, limits, request, custom_id);
    } else {
      read_convenience_row(row, limits, request, custom_id);
    }
  } catch (const LineRejection& rejection) {
    return line_error(line_number, custom_id, rejection.code(), rejection.what());
  }
  return request;
}

}  // namespace conveyor
