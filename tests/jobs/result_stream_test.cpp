// ResultStream: records read back by offset ranges, a reopened stream knows its
// custom_ids and errors, a line cut by a crash is removed, and a file that is not a
// result stream is refused.
#include "coordinator/cluster/result_stream.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "tests/temp_dir.h"

namespace conveyor {
namespace {

using testing::TempDir;

ResultRecord output(const std::string& id) {
  return {false, R"({"custom_id":")" + id + R"(","response":{"status_code":200},"error":null})"};
}

ResultRecord error_record(const std::string& id) {
  return {true, R"({"custom_id":")" + id + R"(","response":null,"error":{"code":"x"}})"};
}

std::unique_ptr<ResultStream> open_stream(const std::filesystem::path& file,
                                          ResultStreamContents* contents = nullptr) {
  auto stream = ResultStream::open(file, contents);
  REQUIRE_MESSAGE(stream.ok(), stream.status().to_string());
  return std::move(stream).value();
}

std::vector<ResultRecord> read_all(const ResultStream& stream, std::uint64_t offset,
                                   std::size_t max) {
  auto records = stream.read(offset, max);
  REQUIRE_MESSAGE(records.ok(), records.status().to_string());
  return std::move(records).value();
}

void check_equal(const std::vector<ResultRecord>& got, const std::vector<ResultRecord>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i].error == want[i].error);
    CHECK(got[i].line == want[i].line);
  }
}

void write_text(const std::filesystem::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
  REQUIRE(out.good());
}

const std::vector<ResultRecord> kRecords = {output("a"), error_record("b"), output("c"),
                                            output("d")};

TEST_CASE("result stream: records are read back by offset ranges") {
  TempDir dir;
  auto stream = open_stream(dir.file("job.jsonl"));
  CHECK(stream->size() == 0);
  CHECK(read_all(*stream, 0, 10).empty());
  for (const ResultRecord& r : kRecords)
    REQUIRE(stream->append(r).ok());
  REQUIRE(stream->sync().ok());
  CHECK(stream->size() == 4);

  check_equal(read_all(*stream, 0, 100), kRecords);
  check_equal(read_all(*stream, 1, 2), {kRecords[1], kRecords[2]});
  check_equal(read_all(*stream, 3, 5), {kRecords[3]});
  CHECK(read_all(*stream, 4, 5).empty());
  CHECK(read_all(*stream, 1000, 5).empty());
  CHECK(read_all(*stream, 0, 0).empty());
  // A limit that overflows offset + max still means "to the end".
  check_equal(read_all(*stream, 2, std::numeric_limits<std::size_t>::max()),
              {kRecords[2], kRecords[3]});
}

TEST_CASE("result stream: a reopened stream reads back its custom_ids and errors") {
  TempDir dir;
  const auto file = dir.file("job.jsonl");
  {
    auto stream = open_stream(file);
    for (const ResultRecord& r : kRecords)
      REQUIRE(stream->append(r).ok());
    REQUIRE(stream->sync().ok());
  }
  ResultStreamContents contents;
  auto stream = open_stream(file, &contents);
  CHECK(contents.custom_ids == std::vector<std::string>{"a", "b", "c", "d"});
  CHECK(contents.errors == 1);
  CHECK(contents.repaired_bytes == 0);
  CHECK(stream->size() == 4);
  check_equal(read_all(*stream, 0, 100), kRecords);

  // Appending continues after what was there.
  REQUIRE(stream->append(error_record("e")).ok());
  check_equal(read_all(*stream, 4, 1), {error_record("e")});
}

TEST_CASE("result stream: a line cut by a crash is removed and the file stays appendable") {
  TempDir dir;
  const auto file = dir.file("job.jsonl");
  {
    auto stream = open_stream(file);
    for (const ResultRecord& r : kRecords)
      REQUIRE(stream->append(r).ok());
  }
  const auto full = std::filesystem::file_size(file);
  std::filesystem::resize_file(file, full - 5);  // the last record loses its end

  ResultStreamContents contents;
  auto stream = open_stream(file, &contents);
  const auto last_line_bytes = kRecords[3].line.size() + 2;  // kind letter and newline
  CHECK(contents.repaired_bytes == last_line_bytes - 5);
  CHECK(contents.custom_ids == std::vector<std::string>{"a", "b", "c"});
  CHECK(std::filesystem::file_size(file) == full - last_line_bytes);
  CHECK(stream->size() == 3);
  check_equal(read_all(*stream, 0, 100), {kRecords[0], kRecords[1], kRecords[2]});

  REQUIRE(stream->append(output("d2")).ok());
  stream.reset();
  ResultStreamContents again;
  stream = open_stream(file, &again);
  CHECK(again.custom_ids == std::vector<std::string>{"a", "b", "c", "d2"});
  CHECK(again.repaired_bytes == 0);
}

TEST_CASE("result stream: a file that is not a result stream is refused") {
  TempDir dir;
  SUBCASE("text lines") {
    write_text(dir.file("job.jsonl"), "hello\nworld\n");
  }
  SUBCASE("an output line without its kind letter") {
    write_text(dir.file("job.jsonl"), output("a").line + "\n");
  }
  SUBCASE("an empty line after a good one") {
    std::string text = "R";
    text.append(output("a").line).append("\n\n");
    write_text(dir.file("job.jsonl"), text);
  }
  const auto before = std::filesystem::file_size(dir.file("job.jsonl"));
  auto stream = ResultStream::open(dir.file("job.jsonl"), nullptr);
  REQUIRE_FALSE(stream.ok());
  CHECK(stream.status().code() == ErrorCode::kMalformed);
  CHECK(stream.status().message().find("not a result stream") != std::string::npos);
  CHECK(std::filesystem::file_size(dir.file("job.jsonl")) == before);  // left as it was
}

TEST_CASE("result stream: a file that cannot be created is an I/O error") {
  TempDir dir;
  auto stream = ResultStream::open(dir.file("missing") / "job.jsonl", nullptr);
  REQUIRE_FALSE(stream.ok());
  CHECK(stream.status().code() == ErrorCode::kIo);
}

TEST_CASE("result stream: remove deletes the file") {
  TempDir dir;
  auto stream = open_stream(dir.file("job.jsonl"));
  REQUIRE(stream->append(output("a")).ok());
  stream->remove();
  CHECK_FALSE(std::filesystem::exists(dir.file("job.jsonl")));
}

TEST_CASE("custom_id_of: the line's custom_id, or empty") {
  CHECK(custom_id_of(output("a-1").line) == "a-1");
  CHECK(custom_id_of(R"({"custom_id":5})").empty());
  CHECK(custom_id_of(R"({"id":"x"})").empty());
  CHECK(custom_id_of("[1,2]").empty());
  CHECK(custom_id_of("not json").empty());
}

}  // namespace
}  // namespace conveyor
