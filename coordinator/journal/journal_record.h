// The typed records of the coordinator's job journal and their binary form.
//
// Payload layout: [u8 version = 1][u8 type][fields...], fields written with WireWriter
// (little-endian integers, u32-length-prefixed strings and arrays). The decoder checks
// every length against the bytes that remain and refuses trailing bytes, so a corrupt
// or hostile payload is kMalformed, never a crash or an outsized allocation (it is
// fuzzed: fuzz/journal_record_fuzz.cpp).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "common/status.h"

namespace conveyor {

inline constexpr std::uint8_t kJournalRecordVersion = 1;

// A producer's chunk of request lines (OpenAI Batch JSONL), accepted.
struct JobChunk {
  std::string job_id;
  std::uint32_t chunk = 0;
  bool final = false;  // the producer's last chunk of this job
  std::vector<std::string> lines;
  std::string producer;

  bool operator==(const JobChunk&) const = default;
};

// Written by compaction: several chunks of one job merged into one record, keeping the
// set of chunk numbers received. A job whose lines exceed one record continues in
// further records with no chunk numbers, whose lines follow the previous ones.
struct CompactedChunks {
  std::string job_id;
  std::vector<std::uint32_t> chunks;
  bool final = false;
  std::vector<std::string> lines;
  std::string producer;

  bool operator==(const CompactedChunks&) const = default;
};

// A request handed to a pipeline replica. Informational: appended without waiting for
// durability; replay keeps the last lease per request.
struct RequestLease {
  std::string job_id;
  std::string custom_id;
  std::uint64_t epoch = 0;
  std::string replica;

  bool operator==(const RequestLease&) const = default;
};

// A request's terminal line (result or error) is durably written elsewhere.
struct RequestDone {
  std::string job_id;
  std::string custom_id;
  bool failed = false;

  bool operator==(const RequestDone&) const = default;
};

struct JobCancelled {
  std::string job_id;

  bool operator==(const JobCancelled&) const = default;
};

// The producer has everything; the job may be forgotten.
struct JobReleased {
  std::string job_id;

  bool operator==(const JobReleased&) const = default;
};

using JournalRecord =
    std::variant<JobChunk, RequestLease, RequestDone, JobCancelled, JobReleased, CompactedChunks>;

// Limits the decoder enforces (the encoder refuses what the decoder would refuse).
inline constexpr std::size_t kMaxJournalIdBytes = 4096;         // job, custom, producer, replica
inline constexpr std::size_t kMaxJournalLineBytes = 64u << 20;  // one request line
inline constexpr std::size_t kMaxJournalLines = 1u << 24;       // lines in one record

Expected<std::vector<std::uint8_t>> encode_journal_record(const JournalRecord& record);
Expected<JournalRecord> decode_journal_record(std::span<const std::uint8_t> payload);

}  // namespace conveyor
