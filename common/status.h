// Status and Expected<T>: how errors cross module, actor and process boundaries.
// Inside a module, code may throw conveyor::Error; the boundary converts it with
// to_status(). Foreign error codes (CUDA, UCX, ZeroMQ, errno) are translated where
// they are first seen, never passed through raw.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace conveyor {

enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,    // the caller asked for something that makes no sense
  kNotFound,           // a file, tensor, alias or key that does not exist
  kMalformed,          // input data (a model file, a JSON line) violates its format
  kUnsupported,        // valid, but not something this build can do
  kOutOfRange,         // a value outside sane limits (sizes, counts, offsets)
  kIo,                 // the operating system refused a read, write or map
  kResourceExhausted,  // memory, KV blocks, queue space
  kInternal,           // a broken invariant: a bug
  kUnavailable,        // a peer or device is gone
  kCancelled,
};

const char* error_code_name(ErrorCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok_status() { return {}; }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "malformed: tensor offset past the end of the file"
  std::string to_string() const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

// Thrown inside modules; carries the code that the boundary turns into a Status.
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }
  Status status() const { return Status(code_, what()); }

 private:
  ErrorCode code_;
};

[[noreturn]] inline void fail(ErrorCode code, const std::string& message) {
  throw Error(code, message);
}

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : storage_(std::move(value)) {}  // NOLINT: implicit by design
  Expected(Status status) : storage_(std::move(status)) {
    if (std::get<Status>(storage_).ok()) {
      storage_ = Status(ErrorCode::kInternal, "Expected constructed from an OK status");
    }
  }

  bool ok() const { return std::holds_alternative<T>(storage_); }
  explicit operator bool() const { return ok(); }

  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(storage_);
  }
  // Precondition: ok(). Throws Error with the carried status otherwise, so a
  // forgotten check fails loudly instead of reading garbage.
  T& value() & {
    check();
    return std::get<T>(storage_);
  }
  const T& value() const& {
    check();
    return std::get<T>(storage_);
  }
  T&& value() && {
    check();
    return std::get<T>(std::move(storage_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  void check() const {
    if (!ok()) {
      const Status& s = std::get<Status>(storage_);
      throw Error(s.code(), s.message());
    }
  }
  std::variant<T, Status> storage_;
};

// Runs fn() and converts a thrown conveyor::Error (or std::exception) into a Status.
template <typename Fn>
auto to_expected(Fn&& fn) -> Expected<decltype(fn())> {
  try {
    return fn();
  } catch (const Error& e) {
    return e.status();
  } catch (const std::bad_alloc&) {
    return Status(ErrorCode::kResourceExhausted, "out of memory");
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, e.what());
  }
}

}  // namespace conveyor
