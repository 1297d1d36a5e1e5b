// Backend::sample's rows packed for the sampling kernel (kernels/cuda/sample_upload.h): host
// code, so it runs on every machine whose build has the CUDA backend (no GPU needed).
#include <doctest/doctest.h>

#ifdef CONVEYOR_WITH_CUDA

#include <cstring>
#include <vector>

#include "common/status.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/sample_upload.h"

using namespace conveyor;

namespace {

template <typename T>
std::vector<T> read(const cuda::HostImage& image, std::size_t offset, std::size_t n) {
  std::vector<T> out(n);
  std::memcpy(out.data(), image.data() + offset, n * sizeof(T));
  return out;
}

}  // namespace

TEST_CASE("sample upload: each row's history lies at its offsets, counts beside output tokens") {
  const std::vector<std::int32_t> seen_a{5, 9, 2};
  const std::vector<std::int32_t> out_a{9};
  const std::vector<std::int32_t> count_a{3};
  const std::vector<std::int32_t> seen_b{7};
  SampleRow a;
  a.temperature = 0.7f;
  a.top_k = 40;
  a.uniform = 0.25;
  a.seen_tokens = seen_a;
  a.output_tokens = out_a;
  a.output_counts = count_a;
  SampleRow b;
  b.greedy = true;
  b.seen_tokens = seen_b;
  const std::vector<SampleRow> rows{a, b};
  const cuda::SampleUpload upload = cuda::pack_sample_rows(rows);
  const auto device = read<cuda::DeviceSampleRow>(upload.image, upload.rows, 2);
  const auto tokens = read<std::int32_t>(upload.image, upload.tokens, 5);
  const auto counts = read<std::int32_t>(upload.image, upload.counts, 5);
  CHECK(tokens == std::vector<std::int32_t>{5, 9, 2, 9, 7});
  CHECK(counts == std::vector<std::int32_t>{0, 0, 0, 3, 0});
  CHECK(device[0].seen_offset == 0);
  CHECK(device[0].seen_count == 3);
  CHECK(device[0].output_offset == 3);
  CHECK(device[0].output_count == 1);
  CHECK(device[0].top_k == 40);
  CHECK(device[0].uniform == 0.25);
  CHECK(device[0].greedy == 0);
  CHECK(device[1].seen_offset == 4);
  CHECK(device[1].seen_count == 1);
  CHECK(device[1].output_count == 0);
  CHECK(device[1].greedy == 1);
  // Room for the drawn tokens, after everything else, every part 16-byte aligned.
  CHECK(upload.out >= upload.counts + 5 * 4);
  CHECK(upload.image.size() == upload.out + 2 * 4);
  for (const std::size_t offset : {upload.rows, upload.tokens, upload.counts, upload.out})
    CHECK(offset % 16 == 0);
}

TEST_CASE("sample upload refuses output tokens without as many counts") {
  const std::vector<std::int32_t> out{1, 2};
  const std::vector<std::int32_t> count{1};
  SampleRow row;
  row.output_tokens = out;
  row.output_counts = count;
  const std::vector<SampleRow> rows{row};
  CHECK_THROWS_AS(cuda::pack_sample_rows(rows), Error);
}

#endif  // CONVEYOR_WITH_CUDA
