// Structured logs for the long-running processes (coordinator, worker).
//
// One named spdlog logger per module, all writing through one sink to stderr:
//
//   spdlog::logger& out = conveyor::logger("cluster");   // created on first use
//   log::info(out, "replica 3 live: w1 [0-29]", {{"epoch", 3}, {"layout", "w1 [0-29]"}});
//   log::warn(out, "cannot record results", {{"job", job_id}});
//
// Each line carries the time, level, logger name, message, the process-wide fields
// (set_process_field: a worker's name and incarnation) and the call's own fields
// (job, epoch, stage, request...). JSON lines when stderr is not a terminal, so that
// collectors parse them; text on a terminal, for people. log_config.h lists the
// environment variables that override both. Plain `logger.info("...")` calls work as
// well; they just carry no call fields.
#pragma once

#include <concepts>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <spdlog/logger.h>

#include "common/log/log_config.h"

namespace conveyor {

// The module's logger, created (at the configured level, on the shared sink) on first
// use; it lives as long as the process.
spdlog::logger& logger(std::string_view name);

namespace log {

// One key=value context field. Numbers are written in decimal; every value is a string
// in the JSON line, so that a field keeps one type whatever the call site.
struct Field {
  Field(std::string k, std::string v) : key(std::move(k)), value(std::move(v)) {}
  Field(std::string k, const char* v) : key(std::move(k)), value(v) {}
  Field(std::string k, std::string_view v) : key(std::move(k)), value(v) {}
  template <typename T>
  requires std::integral<T> || std::floating_point<T> Field(std::string k, T v)
      : key(std::move(k)), value(std::to_string(v)) {}

  std::string key;
  std::string value;
};
using Fields = std::vector<Field>;

void write(spdlog::logger& logger, Level level, std::string_view message,
           const Fields& fields = {});

inline void debug(spdlog::logger& l, std::string_view message, const Fields& fields = {}) {
  write(l, Level::kDebug, message, fields);
}
inline void info(spdlog::logger& l, std::string_view message, const Fields& fields = {}) {
  write(l, Level::kInfo, message, fields);
}
inline void warn(spdlog::logger& l, std::string_view message, const Fields& fields = {}) {
  write(l, Level::kWarn, message, fields);
}
inline void error(spdlog::logger& l, std::string_view message, const Fields& fields = {}) {
  write(l, Level::kError, message, fields);
}

// A field every later line of the process carries (replacing an earlier value of the
// same key): the worker's name, its incarnation.
void set_process_field(const std::string& key, const std::string& value);
void clear_process_fields();

// Replaces the format, level and destination of every logger, existing and future.
// The processes keep the one from the environment (LogConfig::from_environment());
// tests send lines to a string.
void configure(const LogConfig& config);

// Where the configured sink writes each formatted line (newline included); none: stderr.
using LineWriter = std::function<void(std::string_view line)>;
void set_writer(LineWriter writer);

}  // namespace log
}  // namespace conveyor
