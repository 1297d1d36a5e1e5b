#include "coordinator/journal/journal_record.h"

#include <string_view>

#include "common/wire/wire_buffer.h"

namespace conveyor {
namespace {

// The type byte; values are on disk, so never renumber.
enum class RecordType : std::uint8_t {
  kJobChunk = 1,
  kRequestLease = 2,
  kRequestDone = 3,
  kJobCancelled = 4,
  kJobReleased = 5,
  kCompactedChunks = 6,
};

void put_id(WireWriter& out, std::string_view id, const char* field) {
  if (id.size() > kMaxJournalIdBytes) {
    fail(ErrorCode::kOutOfRange, std::string("journal record: ") + field + " is " +
                                     std::to_string(id.size()) + " bytes, more than " +
                                     std::to_string(kMaxJournalIdBytes));
  }
  out.put_string(id);
}

std::string get_id(WireReader& in, const char* field) {
  return in.get_string(field, kMaxJournalIdBytes);
}

void put_lines(WireWriter& out, const std::vector<std::string>& lines) {
  if (lines.size() > kMaxJournalLines) {
    fail(ErrorCode::kOutOfRange,
         "journal record: " + std::to_string(lines.size()) + " lines in one record");
  }
  out.put_count(lines.size());
  for (const std::string& line : lines) {
    if (line.size() > kMaxJournalLineBytes) {
      fail(ErrorCode::kOutOfRange,
           "journal record: a line of " + std::to_string(line.size()) + " bytes");
    }
    out.put_string(line);
  }
}

std::vector<std::string> get_lines(WireReader& in) {
  // Each line costs at least its 4-byte length, so a forged count cannot reserve more
  // than the payload justifies.
  const std::size_t count = in.get_count("lines", 4, kMaxJournalLines);
  std::vector<std::string> lines;
  lines.reserve(count);
  for (std::size_t i = 0; i < count; ++i)
    lines.push_back(in.get_string("line", kMaxJournalLineBytes));
  return lines;
}

void encode(WireWriter& out, const JobChunk& r) {
  out.put(static_cast<std::uint8_t>(RecordType::kJobChunk));
  put_id(out, r.job_id, "job_id");
  out.put<std::uint32_t>(r.chunk);
  out.put_bool(r.final);
  put_lines(out, r.lines);
  put_id(out, r.producer, "producer");
}

void encode(WireWriter& out, const CompactedChunks& r) {
  out.put(static_cast<std::uint8_t>(RecordType::kCompactedChunks));
  put_id(out, r.job_id, "job_id");
  if (r.chunks.size() > kMaxJournalLines) {
    fail(ErrorCode::kOutOfRange,
         "journal record: " + std::to_string(r.chunks.size()) + " chunk numbers");
  }
  out.put_array(r.chunks);
  out.put_bool(r.final);
  put_lines(out, r.lines);
  put_id(out, r.producer, "producer");
}

void encode(WireWriter& out, const RequestLease& r) {
  out.put(static_cast<std::uint8_t>(RecordType::kRequestLease));
  put_id(out, r.job_id, "job_id");
  put_id(out, r.custom_id, "custom_id");
  out.put<std::uint64_t>(r.epoch);
  put_id(out, r.replica, "replica");
}

void encode(WireWriter& out, const RequestDone& r) {
  out.put(static_cast<std::uint8_t>(RecordType::kRequestDone));
  put_id(out, r.job_id, "job_id");
  put_id(out, r.custom_id, "custom_id");
  out.put_bool(r.failed);
}

void encode(WireWriter& out, const JobCancelled& r) {
  out.put(static_cast<std::uint8_t>(RecordType::kJobCancelled));
  put_id(out, r.job_id, "job_id");
}

void encode(WireWriter& out, const JobReleased& r) {
  out.put(static_cast<std::uint8_t>(RecordType::kJobReleased));
  put_id(out, r.job_id, "job_id");
}

JobChunk decode_chunk(WireReader& in) {
  JobChunk r;
  r.job_id = get_id(in, "job_id");
  r.chunk = in.get<std::uint32_t>("chunk");
  r.final = in.get_bool("final");
  r.lines = get_lines(in);
  r.producer = get_id(in, "producer");
  return r;
}

CompactedChunks decode_compacted(WireReader& in) {
  CompactedChunks r;
  r.job_id = get_id(in, "job_id");
  r.chunks = in.get_array<std::uint32_t>("chunks", kMaxJournalLines);
  r.final = in.get_bool("final");
  r.lines = get_lines(in);
  r.producer = get_id(in, "producer");
  return r;
}

JournalRecord decode_record(WireReader& in) {
  const auto version = in.get<std::uint8_t>("version");
  if (version != kJournalRecordVersion) {
    fail(ErrorCode::kMalformed,
         "journal record: version " + std::to_string(version) + " is not supported");
  }
  const auto type = in.get<std::uint8_t>("type");
  switch (static_cast<RecordType>(type)) {
    case RecordType::kJobChunk:
      return decode_chunk(in);
    case RecordType::kRequestLease: {
      RequestLease r;
      r.job_id = get_id(in, "job_id");
      r.custom_id = get_id(in, "custom_id");
      r.epoch = in.get<std::uint64_t>("epoch");
      r.replica = get_id(in, "replica");
      return r;
    }
    case RecordType::kRequestDone: {
      RequestDone r;
      r.job_id = get_id(in, "job_id");
      r.custom_id = get_id(in, "custom_id");
      r.failed = in.get_bool("failed");
      return r;
    }
    case RecordType::kJobCancelled:
      return JobCancelled{get_id(in, "job_id")};
    case RecordType::kJobReleased:
      return JobReleased{get_id(in, "job_id")};
    case RecordType::kCompactedChunks:
      return decode_compacted(in);
  }
  fail(ErrorCode::kMalformed, "journal record: unknown type " + std::to_string(type));
}

}  // namespace

Expected<std::vector<std::uint8_t>> encode_journal_record(const JournalRecord& record) {
  return to_expected([&] {
    WireWriter out;
    out.put(kJournalRecordVersion);
    std::visit([&](const auto& r) { encode(out, r); }, record);
    return out.take();
  });
}

Expected<JournalRecord> decode_journal_record(std::span<const std::uint8_t> payload) {
  return to_expected([&] {
    WireReader in(payload);
    JournalRecord record = decode_record(in);
    in.expect_end("a journal record");
    return record;
  });
}

}  // namespace conveyor
