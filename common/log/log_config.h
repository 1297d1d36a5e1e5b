// How the logs are written: the format and the lowest level that is written.
//
//   CONVEYOR_LOG_FORMAT=json|text  (default: text on a terminal, JSON lines otherwise)
//   CONVEYOR_LOG_LEVEL=debug|info|warn|error  (default: info)
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace conveyor::log {

enum class Level { kDebug, kInfo, kWarn, kError };
enum class Format { kJson, kText };

// "debug", "info", "warn" ("warning"), "error"; nullopt for anything else.
std::optional<Level> parse_level(std::string_view text);
std::optional<Format> parse_format(std::string_view text);
// The name in a JSON line: "debug", "info", "warn", "error".
const char* level_name(Level level);

struct LogConfig {
  Format format = Format::kJson;
  Level level = Level::kInfo;
  // What the environment held that is not a format or level, for one warning line.
  std::string problems;

  // From the two variables (null: unset) and whether stderr is a terminal.
  static LogConfig from(const char* format_variable, const char* level_variable,
                        bool stderr_is_terminal);
  static LogConfig from_environment();
};

}  // namespace conveyor::log
