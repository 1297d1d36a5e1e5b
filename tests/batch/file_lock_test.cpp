#include "coordinator/batch/file_lock.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace conveyor {
namespace {

TEST_CASE("one output file, one writer: a second lock is refused until the first is gone") {
  const auto path = std::filesystem::temp_directory_path() /
                    ("conveyor-lock-test-" + std::to_string(::getpid()) + ".jsonl");
  std::filesystem::remove(path);
  {
    Expected<FileLock> first = FileLock::acquire(path);
    REQUIRE(first.ok());
    CHECK(std::filesystem::exists(path));
    const Expected<FileLock> second = FileLock::acquire(path);
    REQUIRE_FALSE(second.ok());
    CHECK(second.status().code() == ErrorCode::kUnavailable);
    CHECK(second.status().message().find("another process is writing") != std::string::npos);
    FileLock moved = std::move(first).value();  // the lock travels with the object
    CHECK_FALSE(FileLock::acquire(path).ok());
  }
  CHECK(FileLock::acquire(path).ok());
  CHECK(FileLock::acquire(std::filesystem::path("/nonexistent-dir/x.jsonl")).status().code() ==
        ErrorCode::kIo);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace conveyor
