#include "worker/kv_store/disk_tier.h"

#include <doctest/doctest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/kv_store/random_blocks.h"
#include "tests/temp_dir.h"
#include "worker/kv_store/io_status.h"

namespace conveyor {
namespace {

using testing::random_block;
using testing::TempDir;

std::vector<std::string> block_files(const std::filesystem::path& directory) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(directory)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("kv-") && name.ends_with(".blocks")) names.push_back(name);
  }
  return names;
}

TEST_CASE("the disk tier round-trips random blocks and reuses released slots") {
  TempDir dir;
  // Whole pages (direct I/O straight from aligned buffers) and a ragged size (through the
  // bounce buffer, the slot's tail padded).
  for (const std::uint64_t block_bytes : {std::uint64_t{2 * 4096}, std::uint64_t{3 * 4096 + 100}}) {
    CAPTURE(block_bytes);
    DiskTier tier(dir.path(), block_bytes, 6 * 4 * 4096 + 4000);
    MESSAGE("disk tier on " << dir.path() << (tier.direct() ? ": O_DIRECT" : ": buffered"));
    CHECK(tier.name() == "disk");
    CHECK(tier.capacity_blocks() == (block_bytes == 2 * 4096 ? 12 : 6));
    CHECK(std::filesystem::file_size(tier.path()) ==
          static_cast<std::uint64_t>(tier.capacity_blocks()) *
              ((block_bytes + 4095) / 4096 * 4096));
    testing::check_round_trips(tier);
  }
}

TEST_CASE("the disk tier refuses wrong sizes, foreign slots and unwritten reads") {
  TempDir dir;
  DiskTier tier(dir.path(), 4096, 4 * 4096);
  testing::check_refusals(tier);
}

TEST_CASE("the disk tier works with caller buffers at any alignment") {
  TempDir dir;
  for (const std::uint64_t block_bytes : {std::uint64_t{8192}, std::uint64_t{1000}}) {
    DiskTier tier(dir.path(), block_bytes, 8 * 8192);
    for (const std::size_t offset : {0, 1, 512, 4095}) {
      CAPTURE(block_bytes);
      CAPTURE(offset);
      const auto slot = tier.allocate();
      REQUIRE(slot.has_value());
      const auto block = random_block(block_bytes);
      testing::OffsetBuffer in(block_bytes, offset);
      std::copy(block.begin(), block.end(), in.view().begin());
      REQUIRE(tier.write(*slot, in.view()).ok());
      testing::OffsetBuffer out(block_bytes, (offset + 3) % 4096);
      REQUIRE(tier.read(*slot, out.view()).ok());
      CHECK(std::equal(block.begin(), block.end(), out.view().begin()));
    }
  }
}

TEST_CASE("the disk tier removes stale block files at start and its own file at the end") {
  TempDir dir;
  // Left by a process that crashed: nobody holds them.
  dir.write("kv-999999-0.blocks", {1, 2, 3});
  dir.write("kv-1.blocks", std::vector<std::uint8_t>(8192, 7));
  dir.write("notes.txt", {1});  // not ours: kept
  std::filesystem::path first_path;
  {
    DiskTier first(dir.path(), 4096, 4 * 4096);
    first_path = first.path();
    CHECK(block_files(dir.path()) == std::vector<std::string>{first_path.filename().string()});
    CHECK(std::filesystem::exists(dir.file("notes.txt")));
    {
      // A second tier in the same directory must leave the live one alone.
      DiskTier second(dir.path(), 4096, 4 * 4096);
      CHECK(second.path() != first_path);
      CHECK(block_files(dir.path()).size() == 2);
      const auto slot = first.allocate();
      const auto block = random_block(4096);
      REQUIRE(first.write(*slot, block).ok());
      std::vector<std::byte> back(4096);
      REQUIRE(first.read(*slot, back).ok());
      CHECK(back == block);
    }
    CHECK(block_files(dir.path()) == std::vector<std::string>{first_path.filename().string()});
  }
  CHECK(block_files(dir.path()).empty());
}

TEST_CASE("the disk tier creates its directory and refuses a budget without a slot") {
  TempDir dir;
  {
    DiskTier tier(dir.file("nested") / "kv", 4096, 4096);
    CHECK(tier.capacity_blocks() == 1);
  }
  CHECK_THROWS_AS(DiskTier(dir.path(), 4096, 4095), Error);
  CHECK_THROWS_AS(DiskTier(dir.path(), 0, 1 << 20), Error);
  CHECK(block_files(dir.path()).empty());
  dir.write("not-a-directory", {1});
  try {
    DiskTier tier(dir.file("not-a-directory"), 4096, 4096);
    FAIL("a file as the directory was accepted");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kIo);
  }
}

TEST_CASE("a disk tier larger than the free space fails cleanly with kResourceExhausted") {
  TempDir dir;
  struct statvfs fs {};
  REQUIRE(::statvfs(dir.path().c_str(), &fs) == 0);
  const std::uint64_t free_bytes = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
  try {
    DiskTier tier(dir.path(), 1 << 20, free_bytes + (std::uint64_t{1} << 30));
    FAIL("a budget beyond the free space was accepted");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kResourceExhausted);
    CHECK(std::string(e.what()).find(dir.path().string()) != std::string::npos);
  }
  CHECK(block_files(dir.path()).empty());  // the failed attempt left nothing behind
}

// Outcomes of the child process that mounts a tiny tmpfs.
constexpr int kFullDiskRefused = 0;
constexpr int kCannotMount = 77;

int construct_on_tiny_tmpfs(const std::filesystem::path& mount_point) {
  // A private mount namespace: the tmpfs vanishes with the child and is never seen
  // outside it.
  if (::unshare(CLONE_NEWNS) != 0) return kCannotMount;
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return kCannotMount;
  if (::mount("tmpfs", mount_point.c_str(), "tmpfs", 0, "size=1m") != 0) return kCannotMount;
  try {
    DiskTier tier(mount_point, 64 * 1024, 4 << 20);
    return 1;
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kResourceExhausted) return 2;
    if (std::string(e.what()).find(mount_point.string()) == std::string::npos) return 3;
  }
  if (!block_files(mount_point).empty()) return 4;
  return kFullDiskRefused;
}

TEST_CASE("a disk tier on a small file system fails cleanly with kResourceExhausted") {
  TempDir dir;
  const auto mount_point = dir.file("tiny");
  std::filesystem::create_directory(mount_point);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(construct_on_tiny_tmpfs(mount_point));
  int wait_status = 0;
  REQUIRE(::waitpid(child, &wait_status, 0) == child);
  REQUIRE(WIFEXITED(wait_status));
  if (WEXITSTATUS(wait_status) == kCannotMount) {
    MESSAGE("skipped: cannot mount a tmpfs here (needs CAP_SYS_ADMIN)");
    return;
  }
  CHECK(WEXITSTATUS(wait_status) == kFullDiskRefused);
}

TEST_CASE("a full disk is kResourceExhausted, other I/O errors kIo") {
  for (const int full : {ENOSPC, EDQUOT, EFBIG}) {
    const Status status = io_error_status(full, "cannot write /x/kv-1-0.blocks at offset 0");
    CHECK(status.code() == ErrorCode::kResourceExhausted);
    CHECK(status.message().starts_with("cannot write /x/kv-1-0.blocks at offset 0: "));
  }
  CHECK(io_error_status(EIO, "cannot read /x").code() == ErrorCode::kIo);
  CHECK(io_error_status(EBADF, "cannot read /x").message() ==
        "cannot read /x: Bad file descriptor");
}

}  // namespace
}  // namespace conveyor
