#include "coordinator/intake.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "coordinator/batch/line_reader.h"

namespace conveyor {

FileIntake::FileIntake(std::filesystem::path input, IntakeOptions options,
                       std::shared_ptr<const Tokenizer> tokenizer, std::optional<ChatTemplate> chat,
                       std::unordered_set<std::string> finished)
    : input_(std::move(input)),
      preparer_(std::move(options), std::move(tokenizer), std::move(chat)),
      finished_(std::move(finished)) {}

FileIntake::~FileIntake() {
  if (thread_.joinable()) thread_.join();
}

void FileIntake::start(Channel<EngineRequest>& requests, ErrorCallback on_error) {
  thread_ = std::thread([this, &requests, on_error = std::move(on_error)] {
    try {
      read_all(requests, on_error);
    } catch (const Error& e) {
      status_ = e.status();
    } catch (const std::exception& e) {
      status_ = Status(ErrorCode::kInternal, e.what());
    }
    done_ = true;
    requests.close();
  });
}

Status FileIntake::join() {
  if (thread_.joinable()) thread_.join();
  return status_;
}

void FileIntake::read_all(Channel<EngineRequest>& requests, const ErrorCallback& on_error) {
  std::FILE* file = std::fopen(input_.c_str(), "rb");
  if (file == nullptr) {
    status_ =
        Status(ErrorCode::kIo, "cannot open " + input_.string() + ": " + std::strerror(errno));
    return;
  }
  LineReader reader(file, preparer_.options().limits.max_line_bytes);
  std::int64_t line_number = 0;
  std::uint64_t key = 0;
  const auto finished = [&](const std::string& id) { return finished_.count(id) != 0; };
  while (auto line = reader.next()) {
    ++line_number;
    JudgedLine judged = preparer_.judge(line->text, line->length, line_number, seen_, finished);
    if (judged.blank) continue;
    if (judged.skipped) {
      ++skipped_;  // finished in an earlier run
      continue;
    }
    ++lines_;
    if (judged.error) {
      on_error(std::move(*judged.error));
      continue;
    }
    EngineRequest e = std::move(*judged.request);
    e.key = key++;
    e.submitted = SteadyClock::now();
    if (!requests.send(std::move(e))) break;  // the job is stopping
  }
  const bool read_error = reader.error();
  std::fclose(file);
  if (read_error) status_ = Status(ErrorCode::kIo, "error reading " + input_.string());
}

}  // namespace conveyor
