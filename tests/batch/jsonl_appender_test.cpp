// JsonlAppender: whole lines appended, errors naming the path, and a failed write
// that leaves no fragment behind.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <utility>

#include "coordinator/batch/jsonl_appender.h"
#include "tests/batch/batch_test_util.h"

using namespace conveyor;
using namespace conveyor::testing;

TEST_CASE("append creates the file and adds whole lines in order") {
  TempDir dir;
  const auto path = dir.file("out.jsonl");
  {
    auto appender = JsonlAppender::open(path);
    REQUIRE(appender.ok());
    CHECK(appender->path() == path);
    CHECK(appender->append("{\"a\":1}\n").ok());
    CHECK(appender->append("{\"b\":2}\n").ok());
    CHECK(appender->sync().ok());
  }
  CHECK(read_file(path) == "{\"a\":1}\n{\"b\":2}\n");
  struct stat info {};
  REQUIRE(::stat(path.c_str(), &info) == 0);
  const mode_t mask = ::umask(0);
  ::umask(mask);
  CHECK((info.st_mode & 0777) == (0644 & ~mask));
}

TEST_CASE("reopening appends after what is there") {
  TempDir dir;
  const auto path = dir.file("out.jsonl");
  write_file(path, "{\"old\":1}\n");
  auto appender = JsonlAppender::open(path);
  REQUIRE(appender.ok());
  CHECK(appender->append("{\"new\":2}\n").ok());
  CHECK(read_file(path) == "{\"old\":1}\n{\"new\":2}\n");
}

TEST_CASE("a line must end in its only newline; nothing is written otherwise") {
  TempDir dir;
  const auto path = dir.file("out.jsonl");
  auto appender = JsonlAppender::open(path);
  REQUIRE(appender.ok());
  for (const std::string bad : {"", "{}", "{}\n{}\n", "\n\n"}) {
    const Status status = appender->append(bad);
    CAPTURE(bad);
    CHECK(status.code() == ErrorCode::kInvalidArgument);
    CHECK(status.message().find(path.string()) != std::string::npos);
  }
  CHECK(appender->append("\n").ok());  // an empty line is still one line
  CHECK(read_file(path) == "\n");
}

TEST_CASE("open does not create directories, and says why it failed") {
  TempDir dir;
  const auto missing = dir.file("no-such-dir") / "out.jsonl";
  auto appender = JsonlAppender::open(missing);
  REQUIRE_FALSE(appender.ok());
  CHECK(appender.status().code() == ErrorCode::kIo);
  CHECK(appender.status().message().find(missing.string()) != std::string::npos);
  CHECK(appender.status().message().find("No such file or directory") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.file("no-such-dir")));

  auto directory = JsonlAppender::open(dir.file(""));
  REQUIRE_FALSE(directory.ok());
  CHECK(directory.status().code() == ErrorCode::kIo);
}

TEST_CASE("moving hands the file over; the moved-from appender is closed") {
  TempDir dir;
  const auto path = dir.file("out.jsonl");
  auto opened = JsonlAppender::open(path);
  REQUIRE(opened.ok());
  JsonlAppender first = std::move(opened).value();
  JsonlAppender second = std::move(first);
  CHECK(second.append("{\"x\":1}\n").ok());
  CHECK(first.append("{\"y\":2}\n").code() == ErrorCode::kInvalidArgument);  // NOLINT: moved-from

  auto other = JsonlAppender::open(dir.file("other.jsonl"));
  REQUIRE(other.ok());
  *other = std::move(second);  // closes other.jsonl, takes out.jsonl
  CHECK(other->append("{\"z\":3}\n").ok());
  CHECK(read_file(path) == "{\"x\":1}\n{\"z\":3}\n");
  CHECK(read_file(dir.file("other.jsonl")).empty());
}

TEST_CASE("close reports, and later calls fail") {
  TempDir dir;
  auto appender = JsonlAppender::open(dir.file("out.jsonl"));
  REQUIRE(appender.ok());
  CHECK(appender->close().ok());
  CHECK_FALSE(appender->close().ok());
  CHECK_FALSE(appender->append("{}\n").ok());
  CHECK_FALSE(appender->sync().ok());
}

TEST_CASE("a full disk is an I/O error naming the path and the reason") {
  if (!std::filesystem::exists("/dev/full")) return;
  auto appender = JsonlAppender::open("/dev/full");
  REQUIRE(appender.ok());
  const Status status = appender->append("{\"a\":1}\n");
  CHECK(status.code() == ErrorCode::kIo);
  CHECK(status.message().find("/dev/full") != std::string::npos);
  CHECK(status.message().find("No space left on device") != std::string::npos);
}

TEST_CASE("a write cut short leaves no fragment, and appending goes on after it") {
  // In a child process: the file size limit and SIGXFSZ are process-wide.
  TempDir dir;
  const auto path = dir.file("out.jsonl");
  const std::string first(39, 'a');
  const std::string cut(49, 'b');
  const std::string after(9, 'c');
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);  // a write past the limit fails with EFBIG instead
    auto appender = JsonlAppender::open(path);
    if (!appender.ok() || !appender->append(first + "\n").ok()) ::_exit(2);
    const rlimit limit{64, 64};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(3);
    // 40 bytes in the file; 24 of the next 50 fit, then EFBIG.
    const Status status = appender->append(cut + "\n");
    if (status.ok() || status.code() != ErrorCode::kIo) ::_exit(4);
    if (status.message().find("File too large") == std::string::npos) ::_exit(5);
    if (!appender->append(after + "\n").ok()) ::_exit(6);
    ::_exit(0);
  }
  int wait_status = 0;
  REQUIRE(::waitpid(child, &wait_status, 0) == child);
  REQUIRE(WIFEXITED(wait_status));
  CHECK(WEXITSTATUS(wait_status) == 0);
  CHECK(read_file(path) == first + "\n" + after + "\n");
}
