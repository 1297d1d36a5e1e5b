#include "coordinator/journal/record_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include "coordinator/journal/crc32c.h"

namespace conveyor {
namespace {

void store_le32(std::uint8_t* out, std::uint32_t value) {
  for (int i = 0; i < 4; ++i)
    out[i] = static_cast<std::uint8_t>(value >> (8 * i));
}

std::uint32_t load_le32(const std::uint8_t* in) {
  std::uint32_t value = 0;
  for (int i = 0; i < 4; ++i)
    value |= static_cast<std::uint32_t>(in[i]) << (8 * i);
  return value;
}

std::array<std::uint8_t, RecordLog::kHeaderBytes> make_header(
    const std::vector<std::uint8_t>& payload) {
  std::array<std::uint8_t, RecordLog::kHeaderBytes> header{};
  store_le32(header.data(), static_cast<std::uint32_t>(payload.size()));
  store_le32(header.data() + 4, crc32c(payload));
  return header;
}

// Why a payload cannot be a record, or OK. Empty payloads are refused because a
// zero-filled tail (which some filesystems leave after a crash) would otherwise read
// back as a run of valid empty records.
Status check_payload(std::size_t size, std::uint32_t max_record_bytes) {
  if (size == 0) return Status(ErrorCode::kInvalidArgument, "record log: an empty record");
  if (size > max_record_bytes) {
    return Status(ErrorCode::kOutOfRange, "record log: a record of " + std::to_string(size) +
                                              " bytes exceeds the limit of " +
                                              std::to_string(max_record_bytes));
  }
  return Status::ok_status();
}

std::filesystem::path compaction_file(const std::filesystem::path& file) {
  std::filesystem::path scratch = file;
  scratch += ".compact";
  return scratch;
}

}  // namespace

Expected<std::unique_ptr<RecordLog>> RecordLog::open(const std::filesystem::path& file,
                                                     RecordLogOptions options) {
  const std::filesystem::path dir = file.parent_path();
  std::error_code ec;
  // A compaction that crashed before its rename left the old log complete; its half
  // written replacement is garbage.
  if (std::filesystem::remove(compaction_file(file), ec)) {
    if (Status s = sync_directory(dir); !s.ok()) return s;
  } else if (ec) {
    return io_error("cannot remove", compaction_file(file), ec.value());
  }
  const bool existed = std::filesystem::exists(file, ec);
  auto fd = open_file(file, O_RDWR | O_CREAT | O_APPEND);
  if (!fd) return fd.status();
  if (!existed) {
    if (Status s = sync_directory(dir); !s.ok()) return s;
  }
  std::unique_ptr<RecordLog> log(new RecordLog(file, options, std::move(*fd)));
  if (Status s = log->replay(); !s.ok()) return s;
  log->writer_ = std::thread([raw = log.get()] { raw->run_writer(); });
  return log;
}

RecordLog::RecordLog(std::filesystem::path file, RecordLogOptions options, FileHandle fd)
    : file_(std::move(file)), options_(options), fd_(std::move(fd)) {}

RecordLog::~RecordLog() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_.notify_all();
  if (writer_.joinable()) writer_.join();
}

Status RecordLog::replay() {
  struct stat info {};
  if (::fstat(fd_.get(), &info) != 0) return io_error("cannot stat", file_, errno);
  const auto size = static_cast<std::uint64_t>(info.st_size);
  std::uint64_t offset = 0;
  std::array<std::uint8_t, kHeaderBytes> header{};
  while (size - offset >= kHeaderBytes) {
    if (Status s = read_exact(fd_.get(), offset, header, file_); !s.ok()) return s;
    const std::uint32_t length = load_le32(header.data());
    const std::uint32_t crc = load_le32(header.data() + 4);
    if (!check_payload(length, options_.max_record_bytes).ok()) break;
    if (length > size - offset - kHeaderBytes) break;
    std::vector<std::uint8_t> payload(length);
    if (Status s = read_exact(fd_.get(), offset + kHeaderBytes, payload, file_); !s.ok()) {
      return s;
    }
    if (crc32c(payload) != crc) break;
    records_.push_back(std::move(payload));
    offset += kHeaderBytes + length;
  }
  if (offset < size) {
    dropped_tail_bytes_ = size - offset;
    if (::ftruncate(fd_.get(), static_cast<off_t>(offset)) != 0) {
      return io_error("cannot cut the torn tail off", file_, errno);
    }
    if (Status s = sync_data(fd_.get(), file_); !s.ok()) return s;
  }
  counters_.file_bytes = offset;
  counters_.compacted_bytes = offset;
  return Status::ok_status();
}

std::uint64_t RecordLog::append(std::vector<std::uint8_t> payload) {
  const Status valid = check_payload(payload.size(), options_.max_record_bytes);
  std::array<std::uint8_t, kHeaderBytes> header{};
  if (valid.ok()) header = make_header(payload);  // checksummed outside the lock
  std::uint64_t seq = 0;
  {
    std::lock_guard lock(mutex_);
    seq = ++last_seq_;
    if (!valid.ok()) {
      refused_.emplace(seq, valid);
      return seq;
    }
    if (!failure_.ok()) return seq;  // wait_durable reports the failure
    queue_.push_back(Pending{seq, header, std::move(payload)});
  }
  work_.notify_one();
  return seq;
}

Status RecordLog::wait_durable(std::uint64_t seq) {
  std::unique_lock lock(mutex_);
  if (seq > last_seq_) {
    return Status(ErrorCode::kInvalidArgument,
                  "record log: no record " + std::to_string(seq) + " was appended");
  }
  if (auto refused = refused_.find(seq); refused != refused_.end()) return refused->second;
  durable_.wait(lock, [&] { return durable_seq_ >= seq || !failure_.ok(); });
  return durable_seq_ >= seq ? Status::ok_status() : failure_;
}

Status RecordLog::append_durable(std::vector<std::uint8_t> payload) {
  return wait_durable(append(std::move(payload)));
}

Status RecordLog::compact(const std::vector<std::vector<std::uint8_t>>& live) {
  for (const auto& record : live) {
    if (Status s = check_payload(record.size(), options_.max_record_bytes); !s.ok()) return s;
  }
  std::lock_guard one_at_a_time(compact_mutex_);
  CompactionRequest request;
  request.live = &live;
  std::unique_lock lock(mutex_);
  if (!failure_.ok()) return failure_;
  request.after_seq = last_seq_;
  compaction_ = &request;
  work_.notify_one();
  durable_.wait(lock, [&] { return request.finished; });
  return request.result;
}

RecordLogCounters RecordLog::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

void RecordLog::run_writer() {
  std::unique_lock lock(mutex_);
  for (;;) {
    work_.wait(lock, [&] { return stopping_ || !queue_.empty() || compaction_ != nullptr; });
    if (!failure_.ok()) queue_.clear();  // nothing more reaches the file after a failure
    const bool compaction_due =
        compaction_ != nullptr && (queue_.empty() || queue_.front().seq > compaction_->after_seq);
    if (compaction_due) {
      CompactionRequest* request = compaction_;
      Status result = failure_;
      if (result.ok()) {
        lock.unlock();
        result = rewrite(*request->live);
        lock.lock();
      }
      request->result = std::move(result);
      request->finished = true;
      compaction_ = nullptr;
      durable_.notify_all();
      continue;
    }
    if (queue_.empty()) {
      if (stopping_) return;
      continue;
    }
    // A group is everything queued, except records that a pending compaction must see
    // in the new file.
    std::vector<Pending> group;
    while (!queue_.empty() &&
           (compaction_ == nullptr || queue_.front().seq <= compaction_->after_seq)) {
      group.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    lock.unlock();
    write_group(std::move(group));
    lock.lock();
  }
}

void RecordLog::write_group(std::vector<Pending> group) {
  std::vector<iovec> iov;
  iov.reserve(group.size() * 2);
  std::uint64_t bytes = 0;
  for (Pending& record : group) {
    iov.push_back({record.header.data(), record.header.size()});
    iov.push_back({record.payload.data(), record.payload.size()});
    bytes += kHeaderBytes + record.payload.size();
  }
  Status status = write_all(fd_.get(), iov, file_);
  const auto sync_start = std::chrono::steady_clock::now();
  if (status.ok()) status = sync_data(fd_.get(), file_);
  const std::chrono::duration<double> sync_time = std::chrono::steady_clock::now() - sync_start;

  std::lock_guard lock(mutex_);
  if (!status.ok()) {
    failure_ = std::move(status);
  } else {
    durable_seq_ = group.back().seq;
    counters_.records += group.size();
    counters_.groups += 1;
    counters_.bytes += bytes;
    counters_.file_bytes += bytes;
    counters_.last_fsync_seconds = sync_time.count();
    counters_.total_fsync_seconds += sync_time.count();
  }
  durable_.notify_all();
}

// Runs on the writer thread, so no group is written while the file is swapped.
Status RecordLog::rewrite(const std::vector<std::vector<std::uint8_t>>& live) {
  const std::filesystem::path scratch = compaction_file(file_);
  auto fd = open_file(scratch, O_RDWR | O_CREAT | O_TRUNC | O_APPEND);
  if (!fd) return fd.status();
  const auto discard_scratch = [&](Status why) {
    ::unlink(scratch.c_str());
    return why;
  };
  std::vector<std::array<std::uint8_t, kHeaderBytes>> headers;
  headers.reserve(live.size());
  std::vector<iovec> iov;
  iov.reserve(live.size() * 2);
  std::uint64_t bytes = 0;
  for (const auto& record : live) {
    headers.push_back(make_header(record));
    iov.push_back({headers.back().data(), headers.back().size()});
    // writev does not write through iov_base; the cast only satisfies its signature.
    iov.push_back({const_cast<std::uint8_t*>(record.data()), record.size()});
    bytes += kHeaderBytes + record.size();
  }
  if (Status s = write_all(fd->get(), iov, scratch); !s.ok()) return discard_scratch(s);
  if (Status s = sync_data(fd->get(), scratch); !s.ok()) return discard_scratch(s);
  if (::rename(scratch.c_str(), file_.c_str()) != 0) {
    return discard_scratch(io_error("cannot rename the compacted log over", file_, errno));
  }
  // From here the new file is the log: later appends must go to it, and a failure to
  // make the rename durable is sticky, since records appended to the new file could
  // vanish with it in a crash.
  fd_ = std::move(*fd);
  Status durable = sync_directory(file_.parent_path());
  std::lock_guard lock(mutex_);
  if (!durable.ok()) {
    failure_ = durable;
    return durable;
  }
  counters_.compactions += 1;
  counters_.file_bytes = bytes;
  counters_.compacted_bytes = bytes;
  return Status::ok_status();
}

}  // namespace conveyor
