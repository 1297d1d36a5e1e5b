#include "common/log/text_formatter.h"

#include <cctype>
#include <string>

#include "common/log/escape.h"
#include "common/log/record_context.h"

namespace conveyor::log {
namespace {

void append_field(std::string& line, const Field& field) {
  line += ' ';
  append_text_message(line, field.key);
  line += '=';
  append_text_value(line, field.value);
}

}  // namespace

void TextFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  std::string line;
  append_utc_timestamp(line, msg.time);
  line += ' ';
  for (const char* c = level_name(from_spdlog(msg.level)); *c != '\0'; ++c)
    line += static_cast<char>(std::toupper(static_cast<unsigned char>(*c)));
  line += " [";
  line.append(msg.logger_name.data(), msg.logger_name.size());
  line += "] ";
  append_text_message(line, {msg.payload.data(), msg.payload.size()});
  for (const Field& f : *process_fields())
    append_field(line, f);
  for (const Field& f : call_fields())
    append_field(line, f);
  line += '\n';
  dest.append(line.data(), line.data() + line.size());
}

std::unique_ptr<spdlog::formatter> TextFormatter::clone() const {
  return std::make_unique<TextFormatter>();
}

}  // namespace conveyor::log
