#include "coordinator/batch/file_lock.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "tests/temp_dir.h"

namespace conveyor {
namespace {

TEST_CASE("one output file, one writer: a second lock is refused until the first is gone") {
  const testing::TempDir dir;
  const auto path = dir.file("out.jsonl");
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
}

}  // namespace
}  // namespace conveyor
