// RecordLog: an append-only file of checksummed records with group commit.
//
// On disk each record is [u32 payload length][u32 CRC-32C of the payload][payload],
// little-endian, one after another. A record is durable once an fdatasync covering it
// has returned; a crash can only leave a torn or garbled tail after the last durable
// record, which open() detects and cuts off.
//
// Group commit: append() only queues. One writer thread takes everything queued, writes
// it with writev, calls fdatasync once for the whole group, then wakes the waiters. So
// threads that wait for durability at the same time share one fsync instead of paying
// for one each.
//
// Failures are sticky: after a write or sync fails, nothing more is written and every
// later wait, append_durable and compact returns that error, so a record is never lost
// silently (after a failed fsync the kernel may already have dropped the dirty pages,
// so retrying would lie).
#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/status.h"
#include "coordinator/journal/file_handle.h"

namespace conveyor {

struct RecordLogOptions {
  // A header claiming a longer payload is corruption, not a reason to allocate; append()
  // refuses longer payloads for the same reason.
  std::uint32_t max_record_bytes = 64u << 20;
};

struct RecordLogCounters {
  std::uint64_t records = 0;          // records appended (written and synced) since open
  std::uint64_t groups = 0;           // fdatasync calls for appended groups
  std::uint64_t bytes = 0;            // bytes appended since open, headers included
  std::uint64_t compactions = 0;      // completed compact() calls
  std::uint64_t file_bytes = 0;       // the log's current size
  std::uint64_t compacted_bytes = 0;  // its size after open or the last compaction
  double last_fsync_seconds = 0;      // duration of the latest group's fdatasync
  double total_fsync_seconds = 0;     // sum over all groups (average = total / groups)
};

class RecordLog {
 public:
  static constexpr std::size_t kHeaderBytes = 8;

  // Opens `file`, creating it (and making its name durable) when absent. Reads every
  // intact record; from the first bad one on (short header, zero length, length beyond
  // the file or above max_record_bytes, CRC mismatch) the file is truncated, durably.
  // A leftover "<file>.compact" from a compaction that crashed before its rename is
  // removed: the log itself is then still the complete old version.
  static Expected<std::unique_ptr<RecordLog>> open(const std::filesystem::path& file,
                                                   RecordLogOptions options = {});

  ~RecordLog();  // writes and syncs what is still queued, then stops the writer
  RecordLog(const RecordLog&) = delete;
  RecordLog& operator=(const RecordLog&) = delete;

  // The payloads read by open(), in file order.
  const std::vector<std::vector<std::uint8_t>>& records() const { return records_; }
  // Hands them over, leaving records() empty (replay usually needs them only once).
  std::vector<std::vector<std::uint8_t>> take_records() { return std::move(records_); }
  // Bytes cut off the end of the file by open(): a torn or corrupt tail.
  std::uint64_t dropped_tail_bytes() const { return dropped_tail_bytes_; }
  const std::filesystem::path& path() const { return file_; }

  // Queues a record; returns its sequence number (1, 2, ... in call order for this
  // object). Never blocks on I/O. An empty or oversize payload is not written: its
  // wait_durable() returns kInvalidArgument or kOutOfRange.
  std::uint64_t append(std::vector<std::uint8_t> payload);
  // Blocks until record `seq` (and so every record before it) is synced; returns the
  // sticky I/O error instead when writing failed before reaching it.
  Status wait_durable(std::uint64_t seq);
  Status append_durable(std::vector<std::uint8_t> payload);

  // Replaces the log's contents with `live` (which must carry whatever still matters of
  // the records appended before this call): records queued before the call are written
  // and synced first, then `live` goes to "<file>.compact", which is synced, renamed
  // over the log, and the directory synced. Appends made meanwhile wait in the queue and
  // land in the new file. A crash at any point leaves either the complete old log or the
  // complete new one.
  Status compact(const std::vector<std::vector<std::uint8_t>>& live);

  RecordLogCounters counters() const;

 private:
  struct Pending {
    std::uint64_t seq;
    std::array<std::uint8_t, kHeaderBytes> header;
    std::vector<std::uint8_t> payload;
  };
  struct CompactionRequest {
    const std::vector<std::vector<std::uint8_t>>* live = nullptr;
    std::uint64_t after_seq = 0;  // records up to this one go to the old file first
    bool finished = false;
    Status result;
  };

  RecordLog(std::filesystem::path file, RecordLogOptions options, FileHandle fd);
  Status replay();
  void run_writer();
  void write_group(std::vector<Pending> group);
  Status rewrite(const std::vector<std::vector<std::uint8_t>>& live);

  const std::filesystem::path file_;
  const RecordLogOptions options_;
  std::vector<std::vector<std::uint8_t>> records_;
  std::uint64_t dropped_tail_bytes_ = 0;

  // Only the writer thread touches fd_ once it runs (and compaction swaps it there).
  FileHandle fd_;

  mutable std::mutex mutex_;
  std::condition_variable work_;     // the writer waits for records or a compaction
  std::condition_variable durable_;  // waiters wait for durable_seq_ or failure_
  std::deque<Pending> queue_;
  std::map<std::uint64_t, Status> refused_;  // seqs whose payload was never queued
  std::uint64_t last_seq_ = 0;
  std::uint64_t durable_seq_ = 0;
  Status failure_;
  CompactionRequest* compaction_ = nullptr;
  bool stopping_ = false;
  RecordLogCounters counters_;

  std::mutex compact_mutex_;  // one compaction at a time
  std::thread writer_;
};

}  // namespace conveyor
