// The one sink of every logger: formats a line and writes it whole, then flushes, so
// that a line is on stderr the moment it is logged (the cluster's logs are read live,
// and a crash must not swallow the last lines).
#pragma once

#include <mutex>

#include <spdlog/sinks/base_sink.h>

#include "common/log/log.h"

namespace conveyor::log {

class LineSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  // None: stderr.
  void set_writer(LineWriter writer);

 private:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override;

  LineWriter writer_;
};

}  // namespace conveyor::log
