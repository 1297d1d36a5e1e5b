// RecordLog::open on damaged files: a torn tail at every possible byte, a corrupted
// payload, forged lengths and a zero-filled tail are cut off exactly at the last intact
// record, and the repaired file takes appends again.
#include "coordinator/journal/record_log.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tests/journal/journal_test_files.h"
#include "tests/temp_dir.h"

namespace conveyor {
namespace {

using testing::payload;
using testing::payloads;
using testing::read_bytes;
using testing::TempDir;
using testing::write_bytes;

std::unique_ptr<RecordLog> open_log(const std::filesystem::path& file,
                                    RecordLogOptions options = {}) {
  auto log = RecordLog::open(file, options);
  REQUIRE_MESSAGE(log.ok(), log.status().to_string());
  return std::move(*log);
}

const std::vector<std::string> kTexts = {"alpha", "bravo bravo", "charlie", "the last record"};

// Writes kTexts as a log; returns the file's bytes and each record's start offset.
std::vector<std::uint8_t> make_log(const std::filesystem::path& file,
                                   std::vector<std::size_t>& starts) {
  {
    auto log = open_log(file);
    for (const std::string& text : kTexts)
      REQUIRE(log->append_durable(payload(text)).ok());
  }
  std::size_t at = 0;
  for (const std::string& text : kTexts) {
    starts.push_back(at);
    at += RecordLog::kHeaderBytes + text.size();
  }
  auto bytes = read_bytes(file);
  REQUIRE(bytes.size() == at);
  return bytes;
}

void set_le32(std::vector<std::uint8_t>& bytes, std::size_t at, std::uint32_t value) {
  for (std::size_t i = 0; i < 4; ++i)
    bytes[at + i] = static_cast<std::uint8_t>(value >> (8 * i));
}

// Opens the damaged file, expects `kept` records and a file cut to `good_end`, and
// checks the log appends after them.
void check_repaired(const std::filesystem::path& file, std::size_t kept, std::size_t good_end,
                    std::size_t damaged_size, RecordLogOptions options = {}) {
  const std::vector<std::string> expected(kTexts.begin(),
                                          kTexts.begin() + static_cast<std::ptrdiff_t>(kept));
  {
    auto log = open_log(file, options);
    CHECK(log->records() == payloads(expected));
    CHECK(log->dropped_tail_bytes() == damaged_size - good_end);
    CHECK(std::filesystem::file_size(file) == good_end);
    REQUIRE(log->append_durable(payload("appended")).ok());
  }
  auto log = open_log(file, options);
  auto with_append = payloads(expected);
  with_append.push_back(payload("appended"));
  CHECK(log->records() == with_append);
  CHECK(log->dropped_tail_bytes() == 0);
}

TEST_CASE("a torn last record is dropped at every byte where the write could stop") {
  TempDir dir;
  const auto file = dir.file("log");
  std::vector<std::size_t> starts;
  const auto bytes = make_log(file, starts);
  const std::size_t last = starts.back();
  for (std::size_t cut = last; cut < bytes.size(); ++cut) {
    CAPTURE(cut);
    write_bytes(file, std::vector<std::uint8_t>(bytes.begin(),
                                                bytes.begin() + static_cast<std::ptrdiff_t>(cut)));
    check_repaired(file, kTexts.size() - 1, last, cut);
  }
}

TEST_CASE("a corrupted payload byte drops that record and everything after it") {
  TempDir dir;
  const auto file = dir.file("log");
  std::vector<std::size_t> starts;
  const auto original = make_log(file, starts);
  for (std::size_t victim = 0; victim < kTexts.size(); ++victim) {
    CAPTURE(victim);
    auto bytes = original;
    bytes[starts[victim] + RecordLog::kHeaderBytes + 1] ^= 0x20;
    write_bytes(file, bytes);
    check_repaired(file, victim, starts[victim], bytes.size());
  }
}

TEST_CASE("a corrupted checksum field drops the record") {
  TempDir dir;
  const auto file = dir.file("log");
  std::vector<std::size_t> starts;
  auto bytes = make_log(file, starts);
  bytes[starts[2] + 4] ^= 0x01;
  write_bytes(file, bytes);
  check_repaired(file, 2, starts[2], bytes.size());
}

TEST_CASE("a length of 0xFFFFFFFF is a corrupt tail, not an allocation") {
  TempDir dir;
  const auto file = dir.file("log");
  std::vector<std::size_t> starts;
  auto bytes = make_log(file, starts);
  set_le32(bytes, starts[1], 0xFFFFFFFFu);
  write_bytes(file, bytes);
  check_repaired(file, 1, starts[1], bytes.size());
}

TEST_CASE("a length inside the file but above the record limit is a corrupt tail") {
  TempDir dir;
  const auto file = dir.file("log");
  std::vector<std::size_t> starts;
  auto bytes = make_log(file, starts);
  set_le32(bytes, starts[1], 20);  // the rest of the file is longer than 20 bytes
  write_bytes(file, bytes);
  check_repaired(file, 1, starts[1], bytes.size(), RecordLogOptions{.max_record_bytes = 16});
}

TEST_CASE("a zero-filled tail is dropped rather than read as empty records") {
  TempDir dir;
  const auto file = dir.file("log");
  std::vector<std::size_t> starts;
  auto bytes = make_log(file, starts);
  const std::size_t good = bytes.size();
  bytes.resize(good + 4096, 0);
  write_bytes(file, bytes);
  check_repaired(file, kTexts.size(), good, bytes.size());
}

TEST_CASE("a leftover compaction file from a crash before its rename is removed") {
  TempDir dir;
  const auto file = dir.file("log");
  std::vector<std::size_t> starts;
  const auto bytes = make_log(file, starts);
  write_bytes(dir.file("log.compact"), {1, 2, 3});  // a compaction cut short
  auto log = open_log(file);
  CHECK(log->records() == payloads(kTexts));
  CHECK_FALSE(std::filesystem::exists(dir.file("log.compact")));
}

}  // namespace
}  // namespace conveyor
