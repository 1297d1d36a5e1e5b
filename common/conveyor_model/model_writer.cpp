#include "common/conveyor_model/model_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

#include "common/conveyor_model/model_format.h"
#include "common/status.h"

namespace conveyor {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void io_error(const std::string& what, const std::string& path) {
  fail(ErrorCode::kIo, what + " " + path + ": " + std::strerror(errno));
}

bool same_layout(const TensorScheme& a, const TensorScheme& b) {
  return a.name == b.name && a.dtype == b.dtype && a.shape == b.shape &&
         a.group_size == b.group_size && a.values == b.values && a.scales == b.scales;
}

// Writes `text` to `path` durably: a temporary file beside it, fsync, rename.
void write_file_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) io_error("creating", tmp);
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int saved = errno;
      ::close(fd);
      errno = saved;
      io_error("writing", tmp);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int saved = errno;
    ::close(fd);
    errno = saved;
    io_error("flushing", tmp);
  }
  if (::close(fd) != 0) io_error("closing", tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) io_error("renaming", tmp);
}

}  // namespace

ConveyorModelWriter ConveyorModelWriter::create(const std::string& dir, ModelManifest manifest) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail(ErrorCode::kIo, "creating " + dir + ": " + ec.message());
  const fs::path json = fs::path(dir) / kConveyorModelManifest;
  fs::remove(json, ec);
  if (ec) fail(ErrorCode::kIo, "removing " + json.string() + ": " + ec.message());

  std::vector<SafetensorsPlanEntry> plan;
  std::map<std::string, TensorScheme> planned;
  for (const TensorScheme& t : manifest.tensors) {
    for (SafetensorsPlanEntry& e : stored_entries(t))
      plan.push_back(std::move(e));
    if (!planned.emplace(t.name, t).second) {
      fail(ErrorCode::kInvalidArgument, "conveyor model: tensor '" + t.name + "' appears twice");
    }
  }
  SafetensorsWriter weights =
      SafetensorsWriter::create((fs::path(dir) / kConveyorModelWeights).string(), std::move(plan),
                                {{"format", std::string(kConveyorModelFormat)}});
  ConveyorModelWriter writer(dir, std::move(manifest), std::move(weights));
  writer.planned_ = std::move(planned);
  return writer;
}

void ConveyorModelWriter::write(const std::string& name, std::span<const std::uint8_t> values,
                                std::span<const std::uint8_t> scales) {
  const auto it = planned_.find(name);
  if (it == planned_.end()) {
    fail(ErrorCode::kInvalidArgument, "conveyor model: no tensor '" + name + "' in the scheme");
  }
  const TensorScheme& s = it->second;
  if (s.scales.empty() && !scales.empty()) {
    fail(ErrorCode::kInvalidArgument, "conveyor model: tensor '" + name + "' (" +
                                          std::string(dtype_name(s.dtype)) + ") has no scales");
  }
  weights_.write(s.values, values);
  if (!s.scales.empty()) weights_.write(s.scales, scales);
}

void ConveyorModelWriter::write(const TensorRef& tensor) {
  const auto it = planned_.find(tensor.name);
  if (it != planned_.end() &&
      (it->second.dtype != tensor.dtype || it->second.shape != tensor.shape)) {
    fail(ErrorCode::kInvalidArgument, "conveyor model: tensor '" + tensor.name + "' is " +
                                          std::string(dtype_name(tensor.dtype)) + " " +
                                          shape_string(tensor.shape) + ", the scheme says " +
                                          std::string(dtype_name(it->second.dtype)) + " " +
                                          shape_string(it->second.shape));
  }
  write(tensor.name, tensor.bytes, tensor.scales);
}

void ConveyorModelWriter::finish() {
  if (manifest_.tensors.size() != planned_.size()) {
    fail(ErrorCode::kInternal, "conveyor model: tensors were added to or removed from the scheme");
  }
  for (const TensorScheme& t : manifest_.tensors) {
    const auto it = planned_.find(t.name);
    if (it == planned_.end() || !same_layout(it->second, t)) {
      fail(ErrorCode::kInternal,
           "conveyor model: the layout of tensor '" + t.name + "' changed after create()");
    }
  }
  weights_.finish();
  write_file_atomically((std::filesystem::path(dir_) / kConveyorModelManifest).string(),
                        manifest_to_json(manifest_).dump(1) + "\n");
}

std::uint64_t bytes_on_disk(const std::string& path) {
  std::error_code ec;
  const fs::path p(path);
  if (fs::is_regular_file(p, ec)) return fs::file_size(p, ec);
  if (!fs::is_directory(p, ec)) return 0;
  std::uint64_t total = 0;
  for (const fs::directory_entry& e : fs::directory_iterator(p, ec)) {
    if (e.is_regular_file(ec)) total += e.file_size(ec);
  }
  return total;
}

}  // namespace conveyor
