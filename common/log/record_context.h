// What a formatter adds to spdlog's message: the process-wide fields and the fields of
// the call being logged. spdlog's log_msg has no room for fields, so log::write hands
// them over in a thread-local that the (synchronous) sink reads on the same thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/common.h>

#include "common/log/log.h"

namespace conveyor::log {

// The fields set with set_process_field, as they are now.
std::shared_ptr<const Fields> process_fields();

// The fields of the call on this thread; empty outside log::write.
const Fields& call_fields();

// Makes `fields` this thread's call fields while it lives.
class CallFieldsScope {
 public:
  explicit CallFieldsScope(const Fields& fields);
  ~CallFieldsScope();
  CallFieldsScope(const CallFieldsScope&) = delete;
  CallFieldsScope& operator=(const CallFieldsScope&) = delete;

 private:
  const Fields* previous_;
};

// Between our four levels and spdlog's seven (trace counts as debug, critical as error).
spdlog::level::level_enum to_spdlog(Level level);
Level from_spdlog(spdlog::level::level_enum level);

// "2026-11-26T03:40:00.123Z".
void append_utc_timestamp(std::string& out, std::chrono::system_clock::time_point time);

}  // namespace conveyor::log
