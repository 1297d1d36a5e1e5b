// Escaping for log lines: whatever a message or field holds (quotes, newlines, bytes
// that are not UTF-8), a JSON line stays one valid line and a text line stays one line.
#pragma once

#include <string>
#include <string_view>

namespace conveyor::log {

// `text` as the inside of a JSON string: quotes, backslashes and control characters
// escaped, valid UTF-8 kept as it is, each invalid byte replaced by U+FFFD.
void append_json_escaped(std::string& out, std::string_view text);

// A text-format field value: as it is when it is a plain word, else in JSON quotes
// (so that spaces, '=' and quotes cannot be read as the start of another field).
void append_text_value(std::string& out, std::string_view value);

// A text-format message: as it is, but for control characters (a newline would
// start what reads as another line), escaped as in JSON.
void append_text_message(std::string& out, std::string_view message);

}  // namespace conveyor::log
