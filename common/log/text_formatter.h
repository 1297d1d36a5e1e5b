// One line for people: `2026-11-26T03:40:00.123Z INFO [coordinator] msg key=value ...`,
// the process's fields, then the call's.
#pragma once

#include <memory>

#include <spdlog/formatter.h>

namespace conveyor::log {

class TextFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;
};

}  // namespace conveyor::log
