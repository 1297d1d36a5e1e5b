#include "common/log/record_context.h"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <mutex>

namespace conveyor::log {
namespace {

const Fields kNoFields;
thread_local const Fields* t_call_fields = &kNoFields;

struct ProcessFields {
  std::mutex mutex;
  // Replaced, never changed in place: a formatter keeps reading its snapshot while
  // another thread sets a field.
  std::shared_ptr<const Fields> fields = std::make_shared<const Fields>();
};

ProcessFields& process() {
  static ProcessFields* instance = new ProcessFields;  // never destroyed: logs at exit
  return *instance;
}

}  // namespace

std::shared_ptr<const Fields> process_fields() {
  ProcessFields& p = process();
  std::lock_guard lock(p.mutex);
  return p.fields;
}

void set_process_field(const std::string& key, const std::string& value) {
  ProcessFields& p = process();
  std::lock_guard lock(p.mutex);
  auto fields = std::make_shared<Fields>(*p.fields);
  auto it =
      std::find_if(fields->begin(), fields->end(), [&key](const Field& f) { return f.key == key; });
  if (it != fields->end()) {
    it->value = value;
  } else {
    fields->emplace_back(key, value);
  }
  p.fields = std::move(fields);
}

void clear_process_fields() {
  ProcessFields& p = process();
  std::lock_guard lock(p.mutex);
  p.fields = std::make_shared<const Fields>();
}

const Fields& call_fields() {
  return *t_call_fields;
}

CallFieldsScope::CallFieldsScope(const Fields& fields) : previous_(t_call_fields) {
  t_call_fields = &fields;
}

CallFieldsScope::~CallFieldsScope() {
  t_call_fields = previous_;
}

spdlog::level::level_enum to_spdlog(Level level) {
  switch (level) {
    case Level::kDebug:
      return spdlog::level::debug;
    case Level::kInfo:
      return spdlog::level::info;
    case Level::kWarn:
      return spdlog::level::warn;
    case Level::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

Level from_spdlog(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return Level::kDebug;
    case spdlog::level::warn:
      return Level::kWarn;
    case spdlog::level::err:
    case spdlog::level::critical:
      return Level::kError;
    default:
      return Level::kInfo;
  }
}

void append_utc_timestamp(std::string& out, std::chrono::system_clock::time_point time) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  const auto since_epoch = duration_cast<milliseconds>(time.time_since_epoch()).count();
  // Floor division, so that times before 1970 keep milliseconds in [0, 999].
  time_t seconds = static_cast<time_t>(since_epoch / 1000);
  long long millis = since_epoch % 1000;
  if (millis < 0) {
    millis += 1000;
    --seconds;
  }
  struct tm utc {};
  ::gmtime_r(&seconds, &utc);
  char buffer[40];
  const int n = std::snprintf(buffer, sizeof(buffer), "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ",
                              utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour,
                              utc.tm_min, utc.tm_sec, millis);
  if (n > 0) out.append(buffer, static_cast<std::size_t>(n));
}

}  // namespace conveyor::log
