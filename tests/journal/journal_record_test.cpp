// The journal records' binary form: every record type round-trips, and truncated,
// corrupted, forged or random payloads are refused as kMalformed without a crash.
#include "coordinator/journal/journal_record.h"

#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "common/wire/wire_buffer.h"

namespace conveyor {
namespace {

std::vector<JournalRecord> sample_records() {
  return {
      JobChunk{"job-1", 3, false, {"line one", "line two"}, "producer-a"},
      JobChunk{"", 0, false, {}, ""},
      CompactedChunks{"job-7", {0, 1, 2, 5}, true, {"{\"custom_id\":\"a\"}", "", "x"}, "p1"},
      CompactedChunks{"job-7", {}, false, {"more"}, ""},
      RequestLease{"job-1", "req-9", 0xFFFFFFFFFFFFFFFFull, "replica-2"},
      RequestDone{"job-1", "req-9", false},
      RequestDone{"job-1", "req-10", true},
      JobCancelled{"job-2"},
      JobReleased{"job-3"},
  };
}

JournalRecord round_trip(const JournalRecord& record) {
  auto bytes = encode_journal_record(record);
  REQUIRE(bytes.ok());
  auto decoded = decode_journal_record(*bytes);
  REQUIRE_MESSAGE(decoded.ok(), decoded.status().to_string());
  return *decoded;
}

TEST_CASE("every journal record type decodes to what was encoded") {
  for (const JournalRecord& record : sample_records()) {
    CAPTURE(record.index());
    CHECK(round_trip(record) == record);
  }
}

TEST_CASE("records start with the version byte and refuse other versions") {
  auto bytes = encode_journal_record(JobCancelled{"j"});
  REQUIRE(bytes.ok());
  CHECK((*bytes)[0] == kJournalRecordVersion);
  (*bytes)[0] = 2;
  CHECK(decode_journal_record(*bytes).status().code() == ErrorCode::kMalformed);
}

TEST_CASE("unknown types, trailing bytes and bad booleans are malformed") {
  auto bytes = encode_journal_record(RequestDone{"j", "c", true});
  REQUIRE(bytes.ok());
  auto unknown = *bytes;
  unknown[1] = 99;
  CHECK(decode_journal_record(unknown).status().code() == ErrorCode::kMalformed);
  auto trailing = *bytes;
  trailing.push_back(0);
  CHECK(decode_journal_record(trailing).status().code() == ErrorCode::kMalformed);
  auto bad_bool = *bytes;
  REQUIRE(bad_bool.size() == 13);  // version, type, two ids of one byte, the flag
  bad_bool[12] = 2;
  CHECK(decode_journal_record(bad_bool).status().code() == ErrorCode::kMalformed);
  CHECK(decode_journal_record({}).status().code() == ErrorCode::kMalformed);
}

TEST_CASE("every truncation of every record is malformed") {
  for (const JournalRecord& record : sample_records()) {
    auto bytes = encode_journal_record(record);
    REQUIRE(bytes.ok());
    for (std::size_t length = 0; length < bytes->size(); ++length) {
      CAPTURE(length);
      auto decoded = decode_journal_record(std::span(bytes->data(), length));
      CHECK(decoded.status().code() == ErrorCode::kMalformed);
    }
  }
}

// A JobChunk whose fields are fine up to the line count, which is `line_count`, followed
// by one line of declared length `line_bytes` and nothing else.
std::vector<std::uint8_t> forged_chunk(std::uint32_t line_count, std::uint32_t line_bytes) {
  WireWriter out;
  out.put<std::uint8_t>(kJournalRecordVersion);
  out.put<std::uint8_t>(1);  // JobChunk
  out.put_string("job");
  out.put<std::uint32_t>(0);  // chunk
  out.put_bool(false);        // final
  out.put<std::uint32_t>(line_count);
  out.put<std::uint32_t>(line_bytes);
  return out.take();
}

TEST_CASE("forged counts and lengths are refused before anything is allocated for them") {
  CHECK(decode_journal_record(forged_chunk(1u << 24, 0)).status().code() == ErrorCode::kMalformed);
  CHECK(decode_journal_record(forged_chunk(0xFFFFFFFFu, 0)).status().code() ==
        ErrorCode::kMalformed);
  CHECK(decode_journal_record(forged_chunk(1, 0xFFFFFFFFu)).status().code() ==
        ErrorCode::kMalformed);
  // The same shape with honest numbers decodes: the refusals above are about the sizes.
  auto honest = forged_chunk(1, 0);
  WireWriter producer;
  producer.put_string("");
  honest.insert(honest.end(), producer.bytes().begin(), producer.bytes().end());
  auto decoded = decode_journal_record(honest);
  REQUIRE_MESSAGE(decoded.ok(), decoded.status().to_string());
  CHECK(std::get<JobChunk>(*decoded).lines == std::vector<std::string>{""});
}

TEST_CASE("over-long ids are refused by the encoder, as the decoder would") {
  const std::string long_id(kMaxJournalIdBytes + 1, 'x');
  CHECK(encode_journal_record(JobReleased{long_id}).status().code() == ErrorCode::kOutOfRange);
  CHECK(encode_journal_record(JobReleased{std::string(kMaxJournalIdBytes, 'x')}).ok());
}

TEST_CASE("random bytes and mutated records never crash the decoder") {
  std::mt19937_64 random(20240611);
  const auto byte = [&] { return static_cast<std::uint8_t>(random() & 0xFFu); };
  std::size_t decoded_ok = 0;
  for (int i = 0; i < 20000; ++i) {
    std::vector<std::uint8_t> bytes(random() % 64);
    for (auto& b : bytes)
      b = byte();
    if (!bytes.empty() && random() % 2 == 0) bytes[0] = kJournalRecordVersion;
    if (bytes.size() > 1 && random() % 2 == 0) bytes[1] = static_cast<std::uint8_t>(random() % 8);
    const auto decoded = decode_journal_record(bytes);
    if (!decoded.ok()) CHECK(decoded.status().code() == ErrorCode::kMalformed);
  }
  const auto samples = sample_records();
  for (int i = 0; i < 20000; ++i) {
    auto bytes = encode_journal_record(samples[random() % samples.size()]);
    REQUIRE(bytes.ok());
    for (int flips = 1 + static_cast<int>(random() % 3); flips > 0; --flips)
      (*bytes)[random() % bytes->size()] = byte();
    if (random() % 4 == 0) bytes->resize(random() % (bytes->size() + 1));
    const auto decoded = decode_journal_record(*bytes);
    if (decoded.ok()) {
      // Whatever decodes must encode back to the same bytes: no state hides in a record.
      auto again = encode_journal_record(*decoded);
      REQUIRE(again.ok());
      CHECK(*again == *bytes);
      ++decoded_ok;
    } else {
      CHECK(decoded.status().code() == ErrorCode::kMalformed);
    }
  }
  CHECK(decoded_ok > 0);  // the mutations do not only produce garbage
}

}  // namespace
}  // namespace conveyor
