#include "common/log/log_config.h"

#include <unistd.h>

#include <cstdlib>

namespace conveyor::log {

std::optional<Level> parse_level(std::string_view text) {
  if (text == "debug") return Level::kDebug;
  if (text == "info") return Level::kInfo;
  if (text == "warn" || text == "warning") return Level::kWarn;
  if (text == "error") return Level::kError;
  return std::nullopt;
}

std::optional<Format> parse_format(std::string_view text) {
  if (text == "json") return Format::kJson;
  if (text == "text") return Format::kText;
  return std::nullopt;
}

const char* level_name(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

LogConfig LogConfig::from(const char* format_variable, const char* level_variable,
                          bool stderr_is_terminal) {
  LogConfig config;
  config.format = stderr_is_terminal ? Format::kText : Format::kJson;
  if (format_variable != nullptr && *format_variable != '\0') {
    if (std::optional<Format> f = parse_format(format_variable)) {
      config.format = *f;
    } else {
      config.problems +=
          std::string("CONVEYOR_LOG_FORMAT=") + format_variable + " is not json or text; ";
    }
  }
  if (level_variable != nullptr && *level_variable != '\0') {
    if (std::optional<Level> l = parse_level(level_variable)) {
      config.level = *l;
    } else {
      config.problems += std::string("CONVEYOR_LOG_LEVEL=") + level_variable +
                         " is not debug, info, warn or error; ";
    }
  }
  if (!config.problems.empty()) config.problems.resize(config.problems.size() - 2);
  return config;
}

LogConfig LogConfig::from_environment() {
  return from(std::getenv("CONVEYOR_LOG_FORMAT"), std::getenv("CONVEYOR_LOG_LEVEL"),
              ::isatty(STDERR_FILENO) == 1);
}

}  // namespace conveyor::log
