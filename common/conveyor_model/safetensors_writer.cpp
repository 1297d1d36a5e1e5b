#include "common/conveyor_model/safetensors_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <set>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace conveyor {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors stores little-endian data; this writer copies it as is");

constexpr std::uint64_t kDataAlignment = 8;

constexpr std::array<std::pair<std::string_view, std::uint32_t>, 6> kElementBytes = {{
    {"F32", 4},
    {"F16", 2},
    {"BF16", 2},
    {"I8", 1},
    {"U8", 1},
    {"F8_E4M3", 1},
}};

[[noreturn]] void io_error(const std::string& what, const std::string& path) {
  fail(ErrorCode::kIo, what + " " + path + ": " + std::strerror(errno));
}

std::uint64_t entry_bytes(const SafetensorsPlanEntry& e) {
  const std::uint32_t element = safetensors_element_bytes(e.dtype);
  if (element == 0) {
    fail(ErrorCode::kInvalidArgument,
         "safetensors: tensor '" + e.name + "' has unsupported dtype '" + e.dtype + "'");
  }
  std::uint64_t n = element;
  for (std::int64_t d : e.shape) {
    if (d < 0) {
      fail(ErrorCode::kInvalidArgument,
           "safetensors: tensor '" + e.name + "' has a negative dimension");
    }
    if (d != 0 && n > std::numeric_limits<std::uint64_t>::max() / static_cast<std::uint64_t>(d)) {
      fail(ErrorCode::kInvalidArgument, "safetensors: tensor '" + e.name + "' is too large");
    }
    n *= static_cast<std::uint64_t>(d);
  }
  return n;
}

void write_all(int fd, const std::uint8_t* data, std::uint64_t size, std::uint64_t offset,
               const std::string& path) {
  while (size > 0) {
    const std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(size, 1u << 30));
    const ssize_t n = ::pwrite(fd, data, chunk, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      io_error("writing", path);
    }
    data += n;
    size -= static_cast<std::uint64_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
}

}  // namespace

std::uint32_t safetensors_element_bytes(std::string_view dtype) {
  for (const auto& [name, bytes] : kElementBytes) {
    if (name == dtype) return bytes;
  }
  return 0;
}

SafetensorsWriter SafetensorsWriter::create(const std::string& path,
                                            std::vector<SafetensorsPlanEntry> entries,
                                            const std::map<std::string, std::string>& metadata) {
  std::set<std::string> names;
  for (const SafetensorsPlanEntry& e : entries) {
    if (e.name.empty() || e.name == "__metadata__") {
      fail(ErrorCode::kInvalidArgument, "safetensors: a tensor may not be named '" + e.name + "'");
    }
    if (!names.insert(e.name).second) {
      fail(ErrorCode::kInvalidArgument, "safetensors: tensor '" + e.name + "' appears twice");
    }
  }
  std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return safetensors_element_bytes(a.dtype) > safetensors_element_bytes(b.dtype);
  });

  SafetensorsWriter writer;
  writer.path_ = path;
  nlohmann::json header = nlohmann::json::object();
  std::uint64_t data_bytes = 0;
  std::vector<std::pair<std::string, std::uint64_t>> offsets;  // relative to the data
  for (const SafetensorsPlanEntry& e : entries) {
    const std::uint64_t bytes = entry_bytes(e);
    header[e.name] = {
        {"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {data_bytes, data_bytes + bytes}}};
    offsets.emplace_back(e.name, data_bytes);
    writer.slots_[e.name].bytes = bytes;
    data_bytes += bytes;
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  // Spaces after the JSON (which the format allows) put the data on an 8-byte boundary.
  text.append((kDataAlignment - (8 + text.size()) % kDataAlignment) % kDataAlignment, ' ');
  const std::uint64_t data_start = 8 + text.size();
  for (const auto& [name, offset] : offsets)
    writer.slots_[name].offset = data_start + offset;
  writer.file_bytes_ = data_start + data_bytes;

  writer.fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (writer.fd_ < 0) io_error("creating", path);
  std::uint8_t length[8];
  const std::uint64_t n = text.size();
  std::memcpy(length, &n, 8);
  write_all(writer.fd_, length, 8, 0, path);
  write_all(writer.fd_, reinterpret_cast<const std::uint8_t*>(text.data()), text.size(), 8, path);
  if (::ftruncate(writer.fd_, static_cast<off_t>(writer.file_bytes_)) != 0)
    io_error("sizing", path);
  return writer;
}

SafetensorsWriter::SafetensorsWriter(SafetensorsWriter&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      file_bytes_(other.file_bytes_),
      slots_(std::move(other.slots_)) {}

SafetensorsWriter& SafetensorsWriter::operator=(SafetensorsWriter&& other) noexcept {
  if (this != &other) {
    close_quietly();
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    file_bytes_ = other.file_bytes_;
    slots_ = std::move(other.slots_);
  }
  return *this;
}

SafetensorsWriter::~SafetensorsWriter() {
  close_quietly();
}

void SafetensorsWriter::close_quietly() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void SafetensorsWriter::write(const std::string& name, std::span<const std::uint8_t> bytes) {
  if (fd_ < 0) fail(ErrorCode::kInvalidArgument, "safetensors: " + path_ + " is not open");
  const auto it = slots_.find(name);
  if (it == slots_.end()) {
    fail(ErrorCode::kInvalidArgument, "safetensors: no tensor '" + name + "' in " + path_);
  }
  Slot& slot = it->second;
  if (slot.written) {
    fail(ErrorCode::kInvalidArgument, "safetensors: tensor '" + name + "' written twice");
  }
  if (bytes.size() != slot.bytes) {
    fail(ErrorCode::kInvalidArgument, "safetensors: tensor '" + name + "' needs " +
                                          std::to_string(slot.bytes) + " bytes, got " +
                                          std::to_string(bytes.size()));
  }
  write_all(fd_, bytes.data(), bytes.size(), slot.offset, path_);
  slot.written = true;
}

void SafetensorsWriter::finish() {
  if (fd_ < 0) fail(ErrorCode::kInvalidArgument, "safetensors: " + path_ + " is not open");
  for (const auto& [name, slot] : slots_) {
    if (!slot.written) {
      fail(ErrorCode::kInvalidArgument,
           "safetensors: tensor '" + name + "' of " + path_ + " was never written");
    }
  }
  if (::fsync(fd_) != 0) io_error("flushing", path_);
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) io_error("closing", path_);
}

void write_safetensors(const std::string& path, std::span<const SafetensorsTensor> tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<SafetensorsPlanEntry> plan;
  plan.reserve(tensors.size());
  for (const SafetensorsTensor& t : tensors)
    plan.push_back({t.name, t.dtype, t.shape});
  SafetensorsWriter writer = SafetensorsWriter::create(path, std::move(plan), metadata);
  for (const SafetensorsTensor& t : tensors)
    writer.write(t.name, t.bytes);
  writer.finish();
}

}  // namespace conveyor
