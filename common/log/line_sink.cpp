#include "common/log/line_sink.h"

#include <cstdio>

namespace conveyor::log {

void LineSink::set_writer(LineWriter writer) {
  std::lock_guard lock(mutex_);
  writer_ = std::move(writer);
}

void LineSink::sink_it_(const spdlog::details::log_msg& msg) {
  spdlog::memory_buf_t line;
  formatter_->format(msg, line);
  if (writer_) {
    writer_({line.data(), line.size()});
    return;
  }
  // stdio, not write(2): the lines of code that still print with fprintf(stderr) go
  // through the same buffer and cannot interleave inside a line.
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

void LineSink::flush_() {
  if (!writer_) std::fflush(stderr);
}

}  // namespace conveyor::log
