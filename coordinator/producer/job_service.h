// JobService: what the producer server needs from the rest of the coordinator. The
// server owns the socket and the protocol; the service owns jobs, the journal and the
// result streams. Every call comes from the server's one thread, so an
// implementation only has to be safe against its own other threads (the sink
// appending results, say).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace conveyor {

enum class SubmitOutcome {
  kAccepted,   // durable now (journaled and synced): the producer may forget the chunk
  kDuplicate,  // this (job id, chunk) was accepted before: nothing new happened
  kBusy,       // the queue limit is reached: nothing stored, retry after retry_after_ms
  kRejected,   // never acceptable as sent (a chunk after the final one, a cancelled job...)
};

// One chunk of a job: a run of consecutive lines of its OpenAI Batch JSONL input.
struct SubmitChunk {
  std::string job_id;
  std::uint32_t chunk = 0;         // 0, 1, 2, ...: the chunk's place in the job
  bool final = false;              // the job has no chunk after this one
  std::vector<std::string> lines;  // without their '\n'; blank lines kept (line numbers)
  std::string producer;            // hex of the ROUTER identity: for logs, never for routing
};

struct SubmitReply {
  SubmitOutcome outcome = SubmitOutcome::kAccepted;
  std::string message;               // why, for kBusy and kRejected
  std::uint32_t retry_after_ms = 0;  // kBusy: a hint for the producer's back-off
};

// One terminal line of the job's result stream: an output line (error == false) or
// an error line (error == true), each an OpenAI Batch output object without its '\n'.
struct ResultRecord {
  bool error = false;
  std::string line;
};

struct JobStatusReply {
  bool found = false;
  std::string state;  // "receiving", "running", "finished", "cancelled"
  std::int64_t total = 0, completed = 0, failed = 0;
  std::uint32_t chunks = 0;  // chunks accepted so far
  bool final_received = false;
};

struct FetchReply {
  bool found = false;
  std::vector<ResultRecord> records;  // from the requested offset, at most max_records
  std::uint64_t next_offset = 0;      // offset + records.size(): where the next fetch starts
  bool job_done = false;              // finished or cancelled, and nothing after next_offset
  std::int64_t total = 0, completed = 0, failed = 0;  // the job's counts, for progress
};

class JobService {
 public:
  virtual ~JobService() = default;
  // kAccepted only once the chunk is durable: the server ACKs on return.
  virtual SubmitReply submit(const SubmitChunk& chunk) = 0;
  virtual JobStatusReply status(const std::string& job_id) = 0;
  // kNotFound for an unknown job; cancelling a finished job is not an error.
  virtual Status cancel(const std::string& job_id) = 0;
  // The producer has every result: the job and its result stream may be forgotten.
  virtual Status release(const std::string& job_id) = 0;
  // The job's result stream from `offset`; returns at once (the server does the
  // waiting). An offset past the end returns no records and next_offset == offset.
  virtual FetchReply fetch(const std::string& job_id, std::uint64_t offset,
                           std::size_t max_records) = 0;
};

}  // namespace conveyor
