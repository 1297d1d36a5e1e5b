// RecordLog: appends survive a reopen, group commit shares fsyncs, bad payloads and
// I/O failures are reported (and failures stay reported), and compaction swaps the file
// without losing appends made around it.
#include "coordinator/journal/record_log.h"

#include <doctest/doctest.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/journal/journal_test_files.h"
#include "tests/temp_dir.h"

namespace conveyor {
namespace {

using testing::payload;
using testing::payloads;
using testing::TempDir;

std::unique_ptr<RecordLog> open_log(const std::filesystem::path& file,
                                    RecordLogOptions options = {}) {
  auto log = RecordLog::open(file, options);
  REQUIRE_MESSAGE(log.ok(), log.status().to_string());
  return std::move(*log);
}

TEST_CASE("a new log is created empty and records appended to it survive a reopen") {
  TempDir dir;
  const auto file = dir.file("log");
  {
    auto log = open_log(file);
    CHECK(std::filesystem::exists(file));
    CHECK(log->records().empty());
    CHECK(log->dropped_tail_bytes() == 0);
    CHECK(log->append_durable(payload("first")).ok());
    CHECK(log->append_durable(payload("second")).ok());
    const std::uint64_t third = log->append(payload("third"));
    CHECK(third == 3);
    CHECK(log->wait_durable(third).ok());
    const RecordLogCounters c = log->counters();
    CHECK(c.records == 3);
    CHECK(c.groups >= 1);
    CHECK(c.groups <= 3);
    CHECK(c.bytes == 3 * RecordLog::kHeaderBytes + 5 + 6 + 5);
    CHECK(c.file_bytes == c.bytes);
    CHECK(c.last_fsync_seconds >= 0);
  }
  CHECK(std::filesystem::file_size(file) == 3 * RecordLog::kHeaderBytes + 16);
  auto log = open_log(file);
  CHECK(log->records() == payloads({"first", "second", "third"}));
  CHECK(log->dropped_tail_bytes() == 0);
  CHECK(log->append_durable(payload("fourth")).ok());
  log.reset();
  CHECK(open_log(file)->records() == payloads({"first", "second", "third", "fourth"}));
}

TEST_CASE("records queued but not waited for are written when the log closes") {
  TempDir dir;
  const auto file = dir.file("log");
  {
    auto log = open_log(file);
    for (int i = 0; i < 50; ++i)
      log->append(payload(testing::tag("r", i)));
  }
  CHECK(open_log(file)->records().size() == 50);
}

TEST_CASE("empty and oversize payloads are refused without harming the log") {
  TempDir dir;
  const auto file = dir.file("log");
  auto log = open_log(file, RecordLogOptions{.max_record_bytes = 16});
  const Status empty = log->append_durable({});
  CHECK(empty.code() == ErrorCode::kInvalidArgument);
  const Status big = log->append_durable(std::vector<std::uint8_t>(17, 'x'));
  CHECK(big.code() == ErrorCode::kOutOfRange);
  CHECK(log->append_durable(std::vector<std::uint8_t>(16, 'y')).ok());
  CHECK(log->wait_durable(99).code() == ErrorCode::kInvalidArgument);
  CHECK(log->compact({payload("")}).code() == ErrorCode::kInvalidArgument);
  log.reset();
  CHECK(open_log(file)->records() ==
        std::vector<std::vector<std::uint8_t>>{std::vector<std::uint8_t>(16, 'y')});
}

TEST_CASE("a write failure is reported and then returned by every later call") {
  // /dev/full accepts the open and refuses every write with ENOSPC.
  auto opened = RecordLog::open("/dev/full");
  REQUIRE_MESSAGE(opened.ok(), opened.status().to_string());
  auto& log = *opened;
  const Status first = log->append_durable(payload("lost"));
  CHECK(first.code() == ErrorCode::kIo);
  CHECK(log->append_durable(payload("later")).code() == ErrorCode::kIo);
  const std::uint64_t seq = log->append(payload("queued"));
  CHECK(log->wait_durable(seq).code() == ErrorCode::kIo);
  CHECK(log->compact({payload("live")}).code() == ErrorCode::kIo);
  CHECK(log->counters().records == 0);
}

TEST_CASE("group commit: concurrent durable appends share fsyncs and all survive") {
  TempDir dir;
  const auto file = dir.file("log");
  constexpr int kThreads = 8;
  constexpr int kPerThread = 200;
  {
    auto log = open_log(file);
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          const auto seq = log->append(payload(testing::tag(testing::tag("", t) + ":", i)));
          if (!log->wait_durable(seq).ok()) failures.fetch_add(1);
        }
      });
    }
    for (auto& thread : threads)
      thread.join();
    CHECK(failures.load() == 0);
    const RecordLogCounters c = log->counters();
    CHECK(c.records == kThreads * kPerThread);
    // While one group's fdatasync runs, the other threads' records queue up and go out
    // together: fewer syncs than records is what batching guarantees.
    CHECK(c.groups < c.records);
    CHECK(c.total_fsync_seconds >= c.last_fsync_seconds);
  }
  auto log = open_log(file);
  std::set<std::string> seen;
  for (const auto& record : log->records())
    seen.emplace(record.begin(), record.end());
  CHECK(seen.size() == kThreads * kPerThread);
  for (int t = 0; t < kThreads; ++t) {
    CHECK(seen.contains(testing::tag(testing::tag("", t) + ":", 0)));
    CHECK(seen.contains(testing::tag(testing::tag("", t) + ":", kPerThread - 1)));
  }
}

TEST_CASE("compaction replaces the records, shrinks the file and keeps appending") {
  TempDir dir;
  const auto file = dir.file("log");
  auto log = open_log(file);
  for (int i = 0; i < 100; ++i)
    REQUIRE(log->append_durable(payload(testing::tag("old record ", i))).ok());
  const auto before = std::filesystem::file_size(file);
  REQUIRE(log->compact(payloads({"live 1", "live 2"})).ok());
  CHECK(std::filesystem::file_size(file) < before);
  CHECK_FALSE(std::filesystem::exists(dir.file("log.compact")));
  CHECK(log->append_durable(payload("after")).ok());
  const RecordLogCounters c = log->counters();
  CHECK(c.compactions == 1);
  CHECK(c.compacted_bytes == 2 * RecordLog::kHeaderBytes + 12);
  CHECK(c.file_bytes == c.compacted_bytes + RecordLog::kHeaderBytes + 5);
  log.reset();
  CHECK(open_log(file)->records() == payloads({"live 1", "live 2", "after"}));
}

TEST_CASE("compaction to nothing leaves an empty, appendable log") {
  TempDir dir;
  const auto file = dir.file("log");
  auto log = open_log(file);
  REQUIRE(log->append_durable(payload("gone")).ok());
  REQUIRE(log->compact({}).ok());
  CHECK(std::filesystem::file_size(file) == 0);
  REQUIRE(log->append_durable(payload("kept")).ok());
  log.reset();
  CHECK(open_log(file)->records() == payloads({"kept"}));
}

TEST_CASE("compaction while other threads append loses nothing appended after it") {
  TempDir dir;
  const auto file = dir.file("log");
  auto log = open_log(file);
  std::atomic<bool> compactions_over{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  std::vector<std::vector<std::string>> after(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      int i = 0;
      // Keep appending during the compactions, then a few more after them.
      for (int extra = 0; extra < 20; ++i) {
        const bool over = compactions_over.load();
        const std::string text = testing::tag(testing::tag("", t) + ":", i);
        if (!log->append_durable(payload(text)).ok()) failures.fetch_add(1);
        if (over) {
          after[t].push_back(text);
          ++extra;
        }
      }
    });
  }
  for (int k = 0; k < 10; ++k)
    CHECK(log->compact(payloads({testing::tag("live ", k)})).ok());
  compactions_over.store(true);
  for (auto& thread : threads)
    thread.join();
  CHECK(failures.load() == 0);
  log.reset();

  auto reopened = open_log(file);
  CHECK(reopened->dropped_tail_bytes() == 0);
  const auto& records = reopened->records();
  REQUIRE_FALSE(records.empty());
  CHECK(records.front() == payload("live 9"));
  std::set<std::string> seen;
  for (const auto& record : records)
    CHECK(seen.emplace(record.begin(), record.end()).second);  // no record twice
  for (const auto& texts : after) {
    for (const std::string& text : texts)
      CHECK(seen.contains(text));
  }
}

}  // namespace
}  // namespace conveyor
