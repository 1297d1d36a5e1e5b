#include "coordinator/intake.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "coordinator/batch/line_reader.h"
#include "coordinator/prefix_order.h"

namespace conveyor {

FileIntake::FileIntake(std::filesystem::path input, IntakeOptions options,
                       std::shared_ptr<const Tokenizer> tokenizer, std::optional<ChatTemplate> chat,
                       std::unordered_set<std::string> finished, std::int64_t prefix_block_size)
    : input_(std::move(input)),
      prefix_block_size_(prefix_block_size),
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
  // A pipe or a terminal cannot be read twice: it keeps file order.
  std::error_code error;
  if (prefix_block_size_ > 0 && std::filesystem::is_regular_file(input_, error)) {
    read_by_prefix(requests, on_error);
  } else {
    read_in_file_order(requests, on_error);
  }
}

bool FileIntake::deliver(JudgedLine judged, Channel<EngineRequest>& requests,
                         const ErrorCallback& on_error) {
  if (judged.blank) return true;
  if (judged.skipped) {
    ++skipped_;  // finished in an earlier run
    return true;
  }
  ++lines_;
  if (judged.error) {
    on_error(std::move(*judged.error));
    return true;
  }
  EngineRequest e = std::move(*judged.request);
  e.key = next_key_++;
  e.submitted = SteadyClock::now();
  return requests.send(std::move(e));  // false: the job is stopping
}

FileIntake::InputFile FileIntake::open_input() {
  InputFile file(std::fopen(input_.c_str(), "rb"), &std::fclose);
  if (file == nullptr) {
    status_ =
        Status(ErrorCode::kIo, "cannot open " + input_.string() + ": " + std::strerror(errno));
  }
  return file;
}

void FileIntake::read_in_file_order(Channel<EngineRequest>& requests,
                                    const ErrorCallback& on_error) {
  InputFile file = open_input();
  if (file == nullptr) return;
  LineReader reader(file.get(), preparer_.options().limits.max_line_bytes);
  std::int64_t line_number = 0;
  const auto finished = [&](const std::string& id) { return is_finished(id); };
  while (auto line = reader.next()) {
    ++line_number;
    if (!deliver(preparer_.judge(line->text, line->length, line_number, seen_, finished), requests,
                 on_error)) {
      return;
    }
  }
  if (reader.error()) status_ = Status(ErrorCode::kIo, "error reading " + input_.string());
}

void FileIntake::read_by_prefix(Channel<EngineRequest>& requests, const ErrorCallback& on_error) {
  const auto finished = [&](const std::string& id) { return is_finished(id); };
  // First pass: errors and skipped lines are answered now, in file order.
  Expected<std::vector<OrderedLine>> order = order_by_prefix(
      input_, preparer_, prefix_block_size_, seen_, finished,
      [&](JudgedLine& judged) { (void)deliver(std::move(judged), requests, on_error); });
  if (!order.ok()) {
    status_ = order.status();
    return;
  }
  InputFile file = open_input();
  if (file == nullptr) return;
  std::string text;
  for (const OrderedLine& line : *order) {
    // A request line is no longer than limits.max_line_bytes: the buffer stays bounded.
    text.resize(line.length);
    if (::fseeko(file.get(), static_cast<off_t>(line.offset), SEEK_SET) != 0 ||
        std::fread(text.data(), 1, text.size(), file.get()) != text.size()) {
      status_ = Status(ErrorCode::kIo, "error reading " + input_.string() + " at line " +
                                           std::to_string(line.line_number));
      return;
    }
    // The first pass decided repeated custom_ids in file order and answered every
    // repeat: each line here was the first with its id, so it is judged against no
    // other, and keeps its id whatever its place in the new order.
    std::unordered_set<std::string> first_of_its_id;
    JudgedLine judged =
        preparer_.judge(text, line.length, line.line_number, first_of_its_id, finished);
    if (!deliver(std::move(judged), requests, on_error)) return;
  }
}

}  // namespace conveyor
