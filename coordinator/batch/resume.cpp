#include "coordinator/batch/resume.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace conveyor {
namespace {

constexpr std::size_t kReadBlockBytes = std::size_t{1} << 20;

// Closes a descriptor when the scan leaves, whichever way.
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Reads what resume needs from one line without building the JSON tree: whether it is
// an object, its top-level "custom_id" if a string, and whether it has a top-level
// "response" or "error". Memory stays at the line itself however large the line is.
class OutputLineProbe final : public nlohmann::json_sax<nlohmann::json> {
 public:
  bool null() override { return value(nullptr); }
  bool boolean(bool /*value*/) override { return value(nullptr); }
  bool number_integer(number_integer_t /*value*/) override { return value(nullptr); }
  bool number_unsigned(number_unsigned_t /*value*/) override { return value(nullptr); }
  bool number_float(number_float_t /*value*/, const string_t& /*text*/) override {
    return value(nullptr);
  }
  bool string(string_t& text) override { return value(&text); }
  bool binary(binary_t& /*value*/) override { return value(nullptr); }
  bool start_object(std::size_t /*elements*/) override {
    if (depth_ == 0) is_object_ = true;
    value(nullptr);
    ++depth_;
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t /*elements*/) override {
    value(nullptr);
    ++depth_;
    return true;
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool key(string_t& name) override {
    if (depth_ == 1) key_ = name;
    return true;
  }
  bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& error) override {
    error_ = error.what();
    // The message quotes the last token read, which can be a whole long string.
    if (error_.size() > kMaxErrorBytes) error_.resize(kMaxErrorBytes);
    return false;
  }

  bool is_object() const { return is_object_; }
  const std::optional<std::string>& custom_id() const { return custom_id_; }
  bool has_outcome() const { return has_outcome_; }
  const std::string& error() const { return error_; }

 private:
  // Any value starts here; only those of the top-level object's members matter.
  bool value(const string_t* text) {
    if (depth_ != 1) return true;
    if (key_ == "custom_id") {
      custom_id_ = text != nullptr ? std::optional<std::string>(*text) : std::nullopt;
    } else if (key_ == "response" || key_ == "error") {
      has_outcome_ = true;
    }
    return true;
  }

  static constexpr std::size_t kMaxErrorBytes = 200;

  int depth_ = 0;
  bool is_object_ = false;
  bool has_outcome_ = false;
  std::string key_;
  std::optional<std::string> custom_id_;
  std::string error_;
};

Status io_error(const std::string& what, const std::filesystem::path& file, int error) {
  return Status(ErrorCode::kIo, what + " " + file.string() + ": " + std::strerror(error));
}

Status not_an_output_file(const std::filesystem::path& file, std::int64_t line_number,
                          const std::string& why) {
  return Status(ErrorCode::kMalformed, file.string() + " line " + std::to_string(line_number) +
                                           " is not a batch output line (" + why +
                                           "); refusing to append to this file");
}

// One file's scan: lines are fed in as they complete; finish() handles the rest.
class FileScan {
 public:
  FileScan(const std::filesystem::path& file, std::int64_t& counter, ResumeState& state)
      : file_(file), counter_(counter), state_(state) {}

  Status line(std::string_view text) {
    ++line_number_;
    OutputLineProbe probe;
    if (!nlohmann::json::sax_parse(text.data(), text.data() + text.size(), &probe)) {
      return not_an_output_file(file_, line_number_, "invalid JSON: " + probe.error());
    }
    if (!probe.is_object()) return not_an_output_file(file_, line_number_, "not an object");
    if (!probe.custom_id()) {
      return not_an_output_file(file_, line_number_, "no string custom_id");
    }
    if (!probe.has_outcome()) {
      return not_an_output_file(file_, line_number_, "neither response nor error");
    }
    if (state_.finished.insert(*probe.custom_id()).second) ++counter_;
    return Status::ok_status();
  }

  // The bytes after the last '\n': a write cut short, if it looks like one.
  Status check_fragment(std::string_view fragment) const {
    const bool line_start = fragment.front() == '{';
    const bool zeros = fragment.find_first_not_of('\0') == std::string_view::npos;
    if (line_start || zeros) return Status::ok_status();
    return not_an_output_file(file_, line_number_ + 1,
                              "an unterminated last line that does not start with '{'");
  }

  std::int64_t line_number() const { return line_number_; }

 private:
  const std::filesystem::path& file_;
  std::int64_t& counter_;
  ResumeState& state_;
  std::int64_t line_number_ = 0;
};

// Cuts `file` back to `length` bytes, durably: the next append must follow the last
// complete line.
Status truncate_to(const std::filesystem::path& file, std::uint64_t length) {
  const FdGuard fd(::open(file.c_str(), O_WRONLY | O_CLOEXEC));
  if (fd.get() < 0) return io_error("cannot open for repair", file, errno);
  if (::ftruncate(fd.get(), static_cast<off_t>(length)) != 0) {
    return io_error("cannot truncate the cut-off last line of", file, errno);
  }
  if (::fdatasync(fd.get()) != 0) return io_error("cannot sync", file, errno);
  return Status::ok_status();
}

Status scan_file(const std::filesystem::path& file, std::int64_t& counter, ResumeState& state) {
  const FdGuard fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return Status::ok_status();  // nothing written yet
    return io_error("cannot open", file, errno);
  }
  FileScan scan(file, counter, state);
  std::vector<char> buffer(kReadBlockBytes);
  std::string pending;             // the start of a line that continues in the next block
  std::uint64_t block_offset = 0;  // file offset of buffer[0]
  std::uint64_t complete_end = 0;  // file offset just past the last '\n'
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("cannot read", file, errno);
    }
    if (n == 0) break;
    const std::string_view block(buffer.data(), static_cast<std::size_t>(n));
    std::size_t start = 0;
    while (start < block.size()) {
      const std::size_t newline = block.find('\n', start);
      const std::size_t end = newline == std::string_view::npos ? block.size() : newline;
      if (pending.size() + (end - start) > kMaxResumeLineBytes) {
        return not_an_output_file(file, scan.line_number() + 1,
                                  "longer than " + std::to_string(kMaxResumeLineBytes) + " bytes");
      }
      if (newline == std::string_view::npos) {
        pending.append(block.substr(start));
        break;
      }
      Status status = Status::ok_status();
      if (pending.empty()) {
        status = scan.line(block.substr(start, end - start));  // no copy for whole lines
      } else {
        pending.append(block.substr(start, end - start));
        status = scan.line(pending);
        pending.clear();
      }
      if (!status.ok()) return status;
      start = newline + 1;
      complete_end = block_offset + start;
    }
    block_offset += static_cast<std::uint64_t>(n);
  }
  if (pending.empty()) return Status::ok_status();
  if (Status status = scan.check_fragment(pending); !status.ok()) return status;
  if (Status status = truncate_to(file, complete_end); !status.ok()) return status;
  state.repaired_bytes += static_cast<std::int64_t>(pending.size());
  return Status::ok_status();
}

}  // namespace

Expected<ResumeState> scan_for_resume(const std::filesystem::path& output,
                                      const std::filesystem::path& errors) {
  ResumeState state;
  if (Status status = scan_file(output, state.results, state); !status.ok()) return status;
  if (Status status = scan_file(errors, state.errors, state); !status.ok()) return status;
  return state;
}

}  // namespace conveyor
