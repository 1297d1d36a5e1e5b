// The safetensors writer, read back by the reader every model load uses
// (common/hf/safetensors_file.h): names, dtypes, shapes and bytes as written, the data
// on an 8-byte boundary, each tensor aligned to its element size, and the writer's own
// refusals.
#include <doctest/doctest.h>

#include <cstring>
#include <functional>
#include <numeric>
#include <vector>

#include "common/conveyor_model/safetensors_writer.h"
#include "common/hf/safetensors_file.h"
#include "common/status.h"
#include "tests/temp_dir.h"

using namespace conveyor;
using conveyor::testing::TempDir;

namespace {

std::vector<std::uint8_t> pattern(std::size_t n, std::uint8_t seed) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = static_cast<std::uint8_t>(seed + i * 7);
  return v;
}

ErrorCode code_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::kOk;
}

}  // namespace

TEST_CASE("a written file reads back: every tensor, dtype, shape and byte") {
  const TempDir dir;
  const auto u8 = pattern(3 * 68, 1);  // odd sizes, so that alignment matters
  const auto f32 = pattern(5 * 4 * 4, 2);
  const auto f16 = pattern(7 * 2, 3);
  const auto i8 = pattern(3 * 5, 4);
  const auto f8 = pattern(9, 5);
  const auto bf16 = pattern(2 * 3 * 2, 6);
  const std::vector<SafetensorsTensor> tensors = {
      {"blocks", "U8", {3, 68}, u8}, {"w", "F32", {5, 4}, f32},     {"w.scales", "F16", {7}, f16},
      {"ints", "I8", {3, 5}, i8},    {"codes", "F8_E4M3", {9}, f8}, {"half", "BF16", {2, 3}, bf16},
  };
  const std::string path = dir.file("model.safetensors").string();
  write_safetensors(path, tensors, {{"format", "test"}});

  const SafetensorsFile file = SafetensorsFile::open(path).value();
  CHECK(file.metadata().at("format") == "test");
  REQUIRE(file.entries().size() == tensors.size());
  const std::uint8_t* data_start = nullptr;
  for (const SafetensorsTensor& t : tensors) {
    CAPTURE(t.name);
    const SafetensorsEntry* e = file.find(t.name);
    REQUIRE(e != nullptr);
    CHECK(e->dtype_name == t.dtype);
    CHECK(e->shape == t.shape);
    REQUIRE(e->bytes.size() == t.bytes.size());
    CHECK(std::memcmp(e->bytes.data(), t.bytes.data(), t.bytes.size()) == 0);
    const auto offset = reinterpret_cast<std::uintptr_t>(e->bytes.data());
    CHECK(offset % safetensors_element_bytes(t.dtype) == 0);
    if (data_start == nullptr || e->bytes.data() < data_start) data_start = e->bytes.data();
  }
  // The mapping is page-aligned, so the data buffer's offset in the file is its address's.
  CHECK(reinterpret_cast<std::uintptr_t>(data_start) % 8 == 0);
  CHECK(file.find("w")->dtype == DType::kF32);
  CHECK(!file.find("blocks")->dtype.has_value());
}

TEST_CASE("tensors may be written in any order, each exactly once") {
  const TempDir dir;
  const std::string path = dir.file("x.safetensors").string();
  SafetensorsWriter writer =
      SafetensorsWriter::create(path, {{"a", "F32", {2}}, {"b", "U8", {3}}, {"c", "F16", {1}}});
  const auto a = pattern(8, 1);
  const auto b = pattern(3, 2);
  const auto c = pattern(2, 3);
  writer.write("c", c);
  CHECK(code_of([&] { writer.write("c", c); }) == ErrorCode::kInvalidArgument);  // twice
  CHECK(code_of([&] { writer.write("a", b); }) == ErrorCode::kInvalidArgument);  // wrong size
  CHECK(code_of([&] { writer.write("z", b); }) == ErrorCode::kInvalidArgument);  // unknown
  CHECK(code_of([&] { writer.finish(); }) == ErrorCode::kInvalidArgument);       // a, b missing
  writer.write("b", b);
  writer.write("a", a);
  writer.finish();
  const SafetensorsFile file = SafetensorsFile::open(path).value();
  CHECK(std::memcmp(file.find("b")->bytes.data(), b.data(), 3) == 0);
}

TEST_CASE("the writer refuses what the format cannot hold") {
  const TempDir dir;
  const std::string path = dir.file("x.safetensors").string();
  CHECK(code_of([&] {
          SafetensorsWriter::create(path, {{"a", "F32", {2}}, {"a", "F32", {2}}});
        }) == ErrorCode::kInvalidArgument);
  CHECK(code_of([&] {
          SafetensorsWriter::create(path, {{"a", "Q4", {2}}});
        }) == ErrorCode::kInvalidArgument);
  CHECK(code_of([&] {
          SafetensorsWriter::create(path, {{"a", "F32", {-2}}});
        }) == ErrorCode::kInvalidArgument);
  CHECK(code_of([&] {
          SafetensorsWriter::create(path, {{"__metadata__", "F32", {2}}});
        }) == ErrorCode::kInvalidArgument);
  CHECK(code_of([&] {
          SafetensorsWriter::create((dir.path() / "missing" / "x.safetensors").string(),
                                    {{"a", "F32", {2}}});
        }) == ErrorCode::kIo);
}
