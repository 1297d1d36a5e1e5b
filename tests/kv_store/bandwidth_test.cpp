// Swap bandwidth of each tier against a plain memcpy: a measurement printed with
// MESSAGE, never asserted. Runs only when CONVEYOR_KV_BENCH is set:
//   CONVEYOR_KV_BENCH=1 test_kv_store -s -tc="*bandwidth*"
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "tests/kv_store/random_blocks.h"
#include "tests/temp_dir.h"
#include "worker/kv_store/aligned_buffer.h"
#include "worker/kv_store/disk_tier.h"
#include "worker/kv_store/host_tier.h"

namespace conveyor {
namespace {

constexpr std::uint64_t kBlockBytes = 1 << 20;  // a llama-8b block of 16 tokens is 2 MiB
constexpr std::uint64_t kTotalBytes = 256 << 20;
constexpr std::int64_t kBlocks = kTotalBytes / kBlockBytes;

double gb_per_s(std::chrono::steady_clock::duration elapsed) {
  return static_cast<double>(kTotalBytes) / std::chrono::duration<double>(elapsed).count() / 1e9;
}

template <typename Fn>
double measure(Fn&& move_every_block) {
  const auto start = std::chrono::steady_clock::now();
  move_every_block();
  return gb_per_s(std::chrono::steady_clock::now() - start);
}

// Writes every block twice (the first pass commits fresh pages and file extents) and
// reports the second, then reads every block once.
void measure_tier(KvTier& tier, const std::string& label) {
  // One source buffer per block, aligned as a device staging buffer would be.
  AlignedBuffer source(kTotalBytes, kKvSlotAlignment);
  const auto pattern = testing::random_block(kBlockBytes);
  for (std::int64_t i = 0; i < kBlocks; ++i) {
    std::memcpy(source.data() + i * kBlockBytes, pattern.data(), kBlockBytes);
    source.data()[i * kBlockBytes] = static_cast<std::byte>(i);
  }
  auto block = [&](std::int64_t i) {
    return std::span<std::byte>(source.data() + i * kBlockBytes, kBlockBytes);
  };
  for (std::int64_t i = 0; i < kBlocks; ++i)
    REQUIRE(tier.allocate() == i);
  auto write_all = [&] {
    for (std::int64_t i = 0; i < kBlocks; ++i)
      REQUIRE(tier.write(i, block(i)).ok());
  };
  write_all();
  const double write = measure(write_all);
  AlignedBuffer sink(kTotalBytes, kKvSlotAlignment);
  std::memset(sink.data(), 0, kTotalBytes);
  const double read = measure([&] {
    for (std::int64_t i = 0; i < kBlocks; ++i) {
      REQUIRE(tier.read(i, std::span<std::byte>(sink.data() + i * kBlockBytes, kBlockBytes)).ok());
    }
  });
  CHECK(std::memcmp(sink.data(), source.data(), kTotalBytes) == 0);
  MESSAGE(label << ": write " << write << " GB/s, read " << read << " GB/s");
}

TEST_CASE("K/V tier bandwidth: 256 MiB in 1 MiB blocks through host, disk and memcpy") {
  if (std::getenv("CONVEYOR_KV_BENCH") == nullptr) return;

  {
    AlignedBuffer from(kTotalBytes, kKvSlotAlignment);
    AlignedBuffer to(kTotalBytes, kKvSlotAlignment);
    std::memset(from.data(), 1, kTotalBytes);
    std::memset(to.data(), 0, kTotalBytes);
    const double copy = measure([&] { std::memcpy(to.data(), from.data(), kTotalBytes); });
    CHECK(to.data()[kTotalBytes - 1] == std::byte{1});
    MESSAGE("memcpy: " << copy << " GB/s");
  }
  {
    HostTier host(kBlockBytes, kTotalBytes);
    measure_tier(host, "host tier");
  }
  {
    testing::TempDir dir;
    DiskTier disk(dir.path(), kBlockBytes, kTotalBytes);
    measure_tier(disk, std::string("disk tier (") + (disk.direct() ? "O_DIRECT" : "buffered") +
                           ", " + dir.path().string() + ")");
  }
}

}  // namespace
}  // namespace conveyor
