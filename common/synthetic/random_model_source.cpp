#include "common/synthetic/random_model_source.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <string>
#include <thread>

#include <sys/mman.h>

#include "common/model_tensors.h"
#include "common/synthetic/random_values.h"

namespace conveyor {
namespace {

// Tensors are filled in chunks of this many elements, each from its own seed, so
// threads can share a tensor and the bytes do not depend on who filled what. A
// multiple of every block size (256 at most).
constexpr std::int64_t kChunkElements = std::int64_t{1} << 20;

// FNV-1a: a tensor's seed comes from its name, not its place in the list.
std::uint64_t name_hash(const std::string& name) {
  std::uint64_t h = 0xCBF29CE484222325ull;
  for (char c : name) {
    h = (h ^ static_cast<std::uint8_t>(c)) * 0x100000001B3ull;
  }
  return h;
}

// Anonymous memory for one tensor, unmapped when dropped.
struct Unmap {
  std::size_t bytes;
  void operator()(std::uint8_t* p) const { ::munmap(p, bytes); }
};
using TensorBuffer = std::unique_ptr<std::uint8_t, Unmap>;

// Mapped rather than taken from the heap so that the kernel can back large tensors
// with huge pages: faulting in gigabytes 4 KiB at a time otherwise takes longer than
// generating them.
TensorBuffer allocate(std::size_t bytes, const std::string& origin) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    fail(ErrorCode::kResourceExhausted,
         origin + ": cannot allocate " + std::to_string(bytes) + " bytes of weights");
  }
  ::madvise(p, bytes, MADV_HUGEPAGE);  // a hint; refused where huge pages are off
  return TensorBuffer(static_cast<std::uint8_t*>(p), Unmap{bytes});
}

struct FillJob {
  DType dtype;
  float stddev;
  std::uint64_t seed;
  std::int64_t elements;
  std::uint8_t* out;
};

void run_jobs(const std::vector<FillJob>& jobs, int threads) {
  std::atomic<std::size_t> next{0};
  const auto work = [&jobs, &next] {
    for (std::size_t i = next++; i < jobs.size(); i = next++) {
      const FillJob& j = jobs[i];
      fill_random_values(j.dtype, j.stddev, j.seed, j.elements, j.out);
    }
  };
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(threads), jobs.size()));
  std::vector<std::jthread> helpers;
  for (int t = 1; t < threads; ++t)
    helpers.emplace_back(work);
  work();
}

class RandomModel final : public ModelSource {
 public:
  RandomModel(const ModelShape& shape, const RandomModelOptions& options)
      : spec_(spec_for_shape(shape, options.max_positions)),
        format_("random (" + shape.name + ", " + std::string(dtype_name(options.dtype)) + ")"),
        path_("random:" + shape.name),
        tokenizer_status_(ErrorCode::kNotFound, "a random model has no tokenizer") {
    std::vector<FillJob> jobs;
    for (const ExpectedTensor& expected : expected_tensors(spec_)) {
      add_tensor(expected, options, jobs);
    }
    run_jobs(jobs, options.threads);
    check_tensor_shapes(spec_, tensors_, path_);
  }

  const ModelSpec& spec() const override { return spec_; }
  std::string format() const override { return format_; }
  std::string path() const override { return path_; }
  const std::vector<TensorRef>& tensors() const override { return tensors_; }
  const std::optional<TokenizerData>& tokenizer() const override { return tokenizer_; }
  Status tokenizer_status() const override { return tokenizer_status_; }

 private:
  // Allocates the tensor and queues its filling (norms are set here: all ones).
  void add_tensor(const ExpectedTensor& expected, const RandomModelOptions& options,
                  std::vector<FillJob>& jobs) {
    const DType dtype = random_tensor_dtype(options.dtype, expected.shape);
    TensorRef ref{expected.name, dtype, expected.shape, {}};
    const std::int64_t elements = ref.elements();
    const auto bytes = dtype_bytes(dtype, static_cast<std::uint64_t>(elements));
    if (!bytes) fail(ErrorCode::kInternal, "random model: " + ref.name + " has no byte size");
    auto& storage = storage_.emplace_back(allocate(*bytes, path_));
    ref.bytes = {storage.get(), static_cast<std::size_t>(*bytes)};
    auto& scales = scales_.emplace_back(static_cast<std::size_t>(ref.scale_rows()) *
                                        dtype_row_scale_bytes(dtype));
    ref.scales = scales;
    if (expected.shape.size() == 1) {
      const float one = 1.0f;
      for (std::int64_t i = 0; i < elements; ++i)
        std::memcpy(storage.get() + i * 4, &one, sizeof(one));
    } else {
      // 1 / sqrt(in_features) keeps each projection's output at the scale of its
      // input (RMS-normalised, so about 1), whatever the width.
      const auto stddev = static_cast<float>(1.0 / std::sqrt(static_cast<double>(ref.shape[1])));
      const std::uint64_t tensor_seed = mix64(options.seed ^ name_hash(ref.name));
      fill_random_row_scales(dtype, stddev, mix64(tensor_seed ^ 0x5CA1Eull), ref.scale_rows(),
                             scales.data());
      const std::uint64_t bytes_per_chunk = *dtype_bytes(dtype, kChunkElements);
      for (std::int64_t begin = 0, chunk = 0; begin < elements; begin += kChunkElements, ++chunk) {
        const std::uint64_t chunk_seed =
            mix64(tensor_seed + static_cast<std::uint64_t>(chunk) * 0x9E3779B97F4A7C15ull);
        jobs.push_back({dtype, stddev, chunk_seed, std::min(kChunkElements, elements - begin),
                        storage.get() + static_cast<std::uint64_t>(chunk) * bytes_per_chunk});
      }
    }
    tensors_.push_back(std::move(ref));
  }

  ModelSpec spec_;
  std::string format_;
  std::string path_;
  std::vector<TensorBuffer> storage_;              // one mapping per tensor
  std::vector<std::vector<std::uint8_t>> scales_;  // row scales per tensor (row-scaled types)
  std::vector<TensorRef> tensors_;                 // views into storage_
  std::optional<TokenizerData> tokenizer_;         // always empty
  Status tokenizer_status_;
};

}  // namespace

DType random_tensor_dtype(DType requested, const std::vector<std::int64_t>& shape) {
  if (shape.size() < 2) return DType::kF32;
  const std::int64_t row = shape.back();
  for (DType candidate : {requested, DType::kQ8_0}) {
    if (row % dtype_layout(candidate).block_elements == 0) return candidate;
  }
  return DType::kF16;
}

std::uint64_t random_model_bytes(const ModelShape& shape, DType dtype) {
  std::uint64_t total = 0;
  for (const ExpectedTensor& t : expected_tensors(spec_for_shape(shape, 0))) {
    std::uint64_t elements = 1;
    for (std::int64_t d : t.shape)
      elements *= static_cast<std::uint64_t>(d);
    const DType stored = random_tensor_dtype(dtype, t.shape);
    total += dtype_bytes(stored, elements).value_or(0);
    total += elements / static_cast<std::uint64_t>(t.shape.back()) * dtype_row_scale_bytes(stored);
  }
  return total;
}

std::unique_ptr<ModelSource> make_random_model(const ModelShape& shape,
                                               const RandomModelOptions& options) {
  return std::make_unique<RandomModel>(shape, options);
}

}  // namespace conveyor
