#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/gguf/gguf_reader.h"
#include "tests/gguf/gguf_builder.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

GgufBuilder every_value_type() {
  GgufBuilder b;
  b.kv_u8("v.u8", 200)
      .kv_raw("v.i8", gguf_t::kI8, GgufBuilder::encode<std::int8_t>(-5))
      .kv_raw("v.u16", gguf_t::kU16, GgufBuilder::encode<std::uint16_t>(60000))
      .kv_raw("v.i16", gguf_t::kI16, GgufBuilder::encode<std::int16_t>(-30000))
      .kv_u32("v.u32", 4000000000u)
      .kv_i32("v.i32", -7)
      .kv_u64("v.u64", 1ull << 40)
      .kv_i64("v.i64", -(1ll << 40))
      .kv_f32("v.f32", 0.25f)
      .kv_f64("v.f64", 1e-300)
      .kv_bool("v.bool", true)
      .kv_string("v.string", "hello")
      .kv_string_array("v.strings", {"a", "", "ccc"})
      .kv_array<std::int32_t>("v.ints", gguf_t::kI32, {1, -2, 3})
      .kv_array<float>("v.floats", gguf_t::kF32, {0.5f, -1.5f});
  // An array of two arrays: [[1, 2], ["x"]].
  ByteWriter nested;
  nested.u32(gguf_t::kArray).u64(2);
  nested.u32(gguf_t::kU8).u64(2).u8(1).u8(2);
  nested.u32(gguf_t::kString).u64(1).str("x");
  b.kv_raw("v.nested", gguf_t::kArray, nested.take());
  return b;
}

}  // namespace

TEST_CASE("a GGUF v3 file with every metadata type reads back") {
  TempDir dir;
  auto b = every_value_type();
  b.tensor({"w", 0, {4, 3}, std::vector<std::uint8_t>(48, 0), std::nullopt});
  b.tensor({"q", 8, {64}, std::vector<std::uint8_t>(68, 0), std::nullopt});  // q8_0
  auto file = GgufFile::open(dir.write("m.gguf", b.build()));
  REQUIRE_MESSAGE(file.ok(), file.status().to_string());
  CHECK(file->version() == 3);
  CHECK(file->alignment() == 32);
  CHECK(file->data_offset() % 32 == 0);

  const GgufMetadata& m = file->metadata();
  CHECK(m.size() == 16);
  CHECK(m.get_int("v.u8") == 200);
  CHECK(m.get_int("v.i8") == -5);
  CHECK(m.get_int("v.u16") == 60000);
  CHECK(m.get_int("v.i16") == -30000);
  CHECK(m.get_int("v.u32") == 4000000000ll);
  CHECK(m.get_int("v.i32") == -7);
  CHECK(m.get_int("v.u64") == (1ll << 40));
  CHECK(m.get_int("v.i64") == -(1ll << 40));
  CHECK(m.get_float("v.f32") == 0.25);
  CHECK(m.get_float("v.f64") == 1e-300);
  CHECK(m.get_bool("v.bool") == true);
  CHECK(m.get_string("v.string") == "hello");
  CHECK(*m.get_string_array("v.strings") == std::vector<std::string_view>{"a", "", "ccc"});
  CHECK(*m.get_int_array("v.ints") == std::vector<std::int64_t>{1, -2, 3});
  CHECK(*m.get_float_array("v.floats") == std::vector<float>{0.5f, -1.5f});
  const GgufValue* nested = m.find("v.nested");
  REQUIRE(nested != nullptr);
  REQUIRE(nested->arrays.size() == 2);
  CHECK(nested->arrays[0].count == 2);
  CHECK(nested->arrays[1].strings == std::vector<std::string_view>{"x"});
  CHECK(!m.get_int("absent").has_value());
  CHECK(m.entries().front().key == "v.u8");  // file order kept

  REQUIRE(file->tensors().size() == 2);
  const GgufTensorInfo* w = file->find_tensor("w");
  REQUIRE(w != nullptr);
  CHECK(w->ne[0] == 4);
  CHECK(w->ne[1] == 3);
  const TensorRef ref = file->tensor_ref(*w);
  CHECK(ref.shape == std::vector<std::int64_t>{3, 4});  // outermost first
  CHECK(ref.dtype == DType::kF32);
  CHECK(ref.bytes.size() == 48);
  const TensorRef q = file->tensor_ref(*file->find_tensor("q"));
  CHECK(q.dtype == DType::kQ8_0);
  CHECK(q.bytes.size() == 68);
  CHECK(file->find_tensor("nope") == nullptr);
}

TEST_CASE("GGUF v2 and a custom alignment are read") {
  TempDir dir;
  GgufBuilder b;
  b.version = 2;
  b.alignment = 64;
  b.kv_u32("general.alignment", 64);
  b.tensor({"a", 0, {3}, std::vector<std::uint8_t>(12, 0), std::nullopt});
  b.tensor({"b", 1, {5}, std::vector<std::uint8_t>(10, 0), std::nullopt});
  auto file = GgufFile::open(dir.write("v2.gguf", b.build()));
  REQUIRE_MESSAGE(file.ok(), file.status().to_string());
  CHECK(file->version() == 2);
  CHECK(file->alignment() == 64);
  CHECK(file->data_offset() % 64 == 0);
  CHECK(file->find_tensor("b")->offset == 64);
  CHECK(file->find_tensor("b")->dtype == DType::kF16);
}

TEST_CASE("a file with metadata but no tensors is valid") {
  TempDir dir;
  GgufBuilder b;
  b.kv_string("general.architecture", "llama");
  auto file = GgufFile::open(dir.write("empty.gguf", b.build()));
  REQUIRE_MESSAGE(file.ok(), file.status().to_string());
  CHECK(file->tensors().empty());
}

TEST_CASE("typed accessors refuse the wrong type instead of reinterpreting it") {
  TempDir dir;
  auto file = GgufFile::open(dir.write("t.gguf", every_value_type().build()));
  REQUIRE(file.ok());
  const GgufMetadata& m = file->metadata();
  const auto code_of = [](auto&& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return e.code();
    }
    return ErrorCode::kOk;
  };
  const auto message_of = [](auto&& fn) -> std::string {
    try {
      fn();
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  CHECK(code_of([&] { (void)m.get_string("v.strings"); }) == ErrorCode::kMalformed);
  CHECK(message_of([&] { (void)m.get_string("v.strings"); }) ==
        "metadata key 'v.strings' is array of string, expected a string");
  CHECK(code_of([&] { (void)m.get_int_array("v.strings"); }) == ErrorCode::kMalformed);
  CHECK(message_of([&] { (void)m.get_int_array("v.strings"); }).find("array of string") !=
        std::string::npos);
  CHECK(code_of([&] { (void)m.get_int("v.string"); }) == ErrorCode::kMalformed);
  CHECK(code_of([&] { (void)m.get_int("v.f32"); }) == ErrorCode::kMalformed);
  CHECK(code_of([&] { (void)m.get_float("v.i32"); }) == ErrorCode::kMalformed);
  CHECK(code_of([&] { (void)m.get_bool("v.u8"); }) == ErrorCode::kMalformed);
  CHECK(code_of([&] { (void)m.get_string_array("v.ints"); }) == ErrorCode::kMalformed);
  CHECK(code_of([&] { (void)m.get_float_array("v.nested"); }) == ErrorCode::kMalformed);
  CHECK(code_of([&] { (void)m.require_int("missing.key"); }) == ErrorCode::kNotFound);
  CHECK(message_of([&] { (void)m.require_int("missing.key"); }).find("'missing.key'") !=
        std::string::npos);
}

TEST_CASE("a uint64 above INT64_MAX is out of range for get_int") {
  TempDir dir;
  GgufBuilder b;
  b.kv_u64("big", ~0ull);
  auto file = GgufFile::open(dir.write("big.gguf", b.build()));
  REQUIRE(file.ok());
  try {
    (void)file->metadata().get_int("big");
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kOutOfRange);
  }
}
