// One JSON object per line: {"ts", "level", "logger", "msg", then the process's fields,
// then the call's}. For log collectors (Loki, Elasticsearch, `jq`).
#pragma once

#include <memory>

#include <spdlog/formatter.h>

namespace conveyor::log {

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;
};

}  // namespace conveyor::log
