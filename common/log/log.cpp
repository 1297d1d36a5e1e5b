#include "common/log/log.h"

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "common/log/json_formatter.h"
#include "common/log/line_sink.h"
#include "common/log/record_context.h"
#include "common/log/text_formatter.h"

namespace conveyor {
namespace log {
namespace {

std::unique_ptr<spdlog::formatter> formatter_for(Format format) {
  if (format == Format::kText) return std::make_unique<TextFormatter>();
  return std::make_unique<JsonFormatter>();
}

// The loggers by name and what they share. Kept apart from spdlog's global registry,
// which other code (a library) may configure for its own loggers.
class Registry {
 public:
  static Registry& instance() {
    // Never destroyed: threads still running at exit may log.
    static Registry* registry = new Registry(LogConfig::from_environment());
    return *registry;
  }

  spdlog::logger& get(std::string_view name) {
    std::lock_guard lock(mutex_);
    auto it = loggers_.find(name);
    if (it != loggers_.end()) return *it->second;
    auto created = std::make_shared<spdlog::logger>(std::string(name), sink_);
    created->set_level(to_spdlog(level_));
    created->flush_on(spdlog::level::trace);
    spdlog::logger& result = *created;
    loggers_.emplace(std::string(name), std::move(created));
    return result;
  }

  void configure(const LogConfig& config) {
    std::lock_guard lock(mutex_);
    level_ = config.level;
    sink_->set_formatter(formatter_for(config.format));
    for (auto& [name, l] : loggers_)
      l->set_level(to_spdlog(level_));
  }

  void set_writer(LineWriter writer) { sink_->set_writer(std::move(writer)); }

  // What the environment held that is not a setting; said once, by the first caller.
  std::string take_problems() {
    std::lock_guard lock(mutex_);
    return std::exchange(problems_, {});
  }

 private:
  explicit Registry(const LogConfig& config)
      : sink_(std::make_shared<LineSink>()), level_(config.level) {
    sink_->set_formatter(formatter_for(config.format));
    problems_ = config.problems;
  }

  std::mutex mutex_;
  std::shared_ptr<LineSink> sink_;
  Level level_;
  std::map<std::string, std::shared_ptr<spdlog::logger>, std::less<>> loggers_;
  std::string problems_;
};

}  // namespace

void write(spdlog::logger& logger, Level level, std::string_view message, const Fields& fields) {
  const spdlog::level::level_enum l = to_spdlog(level);
  if (!logger.should_log(l)) return;
  CallFieldsScope scope(fields);
  logger.log(l, spdlog::string_view_t(message.data(), message.size()));
}

void configure(const LogConfig& config) {
  Registry::instance().configure(config);
}

void set_writer(LineWriter writer) {
  Registry::instance().set_writer(std::move(writer));
}

}  // namespace log

spdlog::logger& logger(std::string_view name) {
  log::Registry& registry = log::Registry::instance();
  spdlog::logger& result = registry.get(name);
  if (std::string problems = registry.take_problems(); !problems.empty())
    log::warn(registry.get("log"), "ignored the log settings: " + problems);
  return result;
}

}  // namespace conveyor
