#include "common/log/json_formatter.h"

#include <string>
#include <string_view>

#include "common/log/escape.h"
#include "common/log/record_context.h"

namespace conveyor::log {
namespace {

void append_member(std::string& line, std::string_view key, std::string_view value) {
  line += ",\"";
  append_json_escaped(line, key);
  line += "\":\"";
  append_json_escaped(line, value);
  line += '"';
}

}  // namespace

void JsonFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  std::string line = "{\"ts\":\"";
  append_utc_timestamp(line, msg.time);
  line += "\",\"level\":\"";
  line += level_name(from_spdlog(msg.level));
  line += '"';
  append_member(line, "logger", {msg.logger_name.data(), msg.logger_name.size()});
  append_member(line, "msg", {msg.payload.data(), msg.payload.size()});
  for (const Field& f : *process_fields())
    append_member(line, f.key, f.value);
  for (const Field& f : call_fields())
    append_member(line, f.key, f.value);
  line += "}\n";
  dest.append(line.data(), line.data() + line.size());
}

std::unique_ptr<spdlog::formatter> JsonFormatter::clone() const {
  return std::make_unique<JsonFormatter>();
}

}  // namespace conveyor::log
