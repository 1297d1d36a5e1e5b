// The safetensors reader on good files and on one hostile file per bug class. Every
// hostile case must end in a Status with the right code, never a crash or a huge
// allocation.
#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <string>

#include "common/hf/safetensors_file.h"
#include "tests/hf/safetensors_builder.h"
#include "tests/hf/test_files.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

// Writes `bytes` to a scratch file and opens it.
Expected<SafetensorsFile> open_bytes(const TempDir& dir, const std::vector<std::uint8_t>& bytes) {
  const std::string path = dir.file("t.safetensors");
  write_bytes(path, bytes);
  return SafetensorsFile::open(path);
}

// A file with the header text given and `data_size` zero bytes of data.
Expected<SafetensorsFile> open_header(const TempDir& dir, std::string_view header,
                                      std::size_t data_size) {
  const std::vector<std::uint8_t> data(data_size, 0);
  return open_bytes(dir, safetensors_bytes(header, data));
}

void check_error(const Expected<SafetensorsFile>& file, ErrorCode code, std::string_view words) {
  REQUIRE_FALSE(file.ok());
  CHECK(file.status().code() == code);
  INFO(file.status().to_string());
  CHECK(file.status().message().find(words) != std::string::npos);
}

}  // namespace

TEST_CASE("safetensors: a well-formed file lists its tensors with views into the mapping") {
  TempDir dir;
  const std::vector<float> a = {1, 2, 3, 4, 5, 6};
  const std::vector<std::uint8_t> half = {0x00, 0x3c, 0x00, 0x40};  // f16 1.0, 2.0
  auto file = open_bytes(dir, SafetensorsBuilder()
                                  .add_f32("b.weight", {2, 3}, a)
                                  .add("a.half", "F16", {2}, half)
                                  .add("empty", "BF16", {0, 4}, {})
                                  .add("scalar", "F32", {}, f32_bytes({7}))
                                  .metadata("format", "pt")
                                  .bytes());
  REQUIRE(file.ok());
  REQUIRE(file->entries().size() == 4);
  CHECK(file->entries()[0].name == "a.half");  // sorted by name
  CHECK(file->metadata().at("format") == "pt");

  const SafetensorsEntry* b = file->find("b.weight");
  REQUIRE(b != nullptr);
  CHECK(b->dtype == DType::kF32);
  CHECK(b->shape == std::vector<std::int64_t>{2, 3});
  REQUIRE(b->bytes.size() == 24);
  float values[6];
  std::memcpy(values, b->bytes.data(), sizeof values);
  CHECK(values[5] == 6.0f);

  const TensorRef ref = to_tensor_ref(*file->find("a.half"), "canonical", "origin");
  CHECK(ref.name == "canonical");
  CHECK(ref.dtype == DType::kF16);
  CHECK(ref.bytes.size() == 4);
  CHECK(file->find("empty")->bytes.empty());
  CHECK(file->find("scalar")->shape.empty());
  CHECK(file->find("missing") == nullptr);
}

TEST_CASE("safetensors: the header length is checked before it is used") {
  TempDir dir;
  SUBCASE("longer than 100 MB") {
    check_error(open_bytes(dir, safetensors_bytes("{}", {}, 100'000'001)), ErrorCode::kOutOfRange,
                "100 MB");
  }
  SUBCASE("longer than the file") {
    check_error(open_bytes(dir, safetensors_bytes("{}", {}, 64)), ErrorCode::kOutOfRange,
                "past the end of the file");
  }
  SUBCASE("the largest 64-bit length does not wrap around") {
    check_error(open_bytes(dir, safetensors_bytes("{}", {}, ~std::uint64_t{0})),
                ErrorCode::kOutOfRange, "100 MB");
  }
}

TEST_CASE("safetensors: truncated headers") {
  TempDir dir;
  SUBCASE("shorter than the 8-byte length") {
    check_error(open_bytes(dir, {0x10, 0x00, 0x00}), ErrorCode::kMalformed, "too short");
  }
  SUBCASE("empty file") {
    check_error(open_bytes(dir, {}), ErrorCode::kMalformed, "too short");
  }
  SUBCASE("JSON cut off inside the header") {
    check_error(open_header(dir, R"({"a": {"dtype": "F32", "sha)", 0), ErrorCode::kMalformed,
                "not valid JSON");
  }
  SUBCASE("file cut off inside the header") {
    std::vector<std::uint8_t> bytes = SafetensorsBuilder().add_f32("a", {2}, {1, 2}).bytes();
    bytes.resize(20);
    check_error(open_bytes(dir, bytes), ErrorCode::kOutOfRange, "past the end of the file");
  }
}

TEST_CASE("safetensors: headers that are not the expected JSON") {
  TempDir dir;
  SUBCASE("invalid JSON") {
    check_error(open_header(dir, R"({"a": nope})", 0), ErrorCode::kMalformed, "not valid JSON");
  }
  SUBCASE("top level is not an object") {
    check_error(open_header(dir, "[1, 2]", 0), ErrorCode::kMalformed, "not a JSON object");
  }
  SUBCASE("entry is not an object") {
    check_error(open_header(dir, R"({"a": 5})", 0), ErrorCode::kMalformed,
                "'a' is not a JSON object");
  }
  SUBCASE("entry is an array") {
    check_error(open_header(dir, R"({"a": ["F32", [1], [0, 4]]})", 4), ErrorCode::kMalformed,
                "'a' is not a JSON object");
  }
  SUBCASE("dtype missing") {
    check_error(open_header(dir, R"({"a": {"shape": [1], "data_offsets": [0, 4]}})", 4),
                ErrorCode::kMalformed, "dtype");
  }
  SUBCASE("shape not an array") {
    check_error(
        open_header(dir, R"({"a": {"dtype": "F32", "shape": 1, "data_offsets": [0, 4]}})", 4),
        ErrorCode::kMalformed, "shape");
  }
  SUBCASE("data_offsets with three numbers") {
    check_error(
        open_header(dir, R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}})", 4),
        ErrorCode::kMalformed, "data_offsets");
  }
  SUBCASE("fractional dimension") {
    check_error(
        open_header(dir, R"({"a": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", 4),
        ErrorCode::kMalformed, "not an integer");
  }
  SUBCASE("metadata is not an object of strings") {
    check_error(open_header(dir, R"({"__metadata__": {"n": 3}})", 0), ErrorCode::kMalformed,
                "__metadata__");
    check_error(open_header(dir, R"({"__metadata__": []})", 0), ErrorCode::kMalformed,
                "__metadata__");
  }
  SUBCASE("nesting deep enough to exhaust a recursive parser") {
    const std::string deep =
        R"({"a": )" + std::string(100'000, '[') + std::string(100'000, ']') + "}";
    check_error(open_header(dir, deep, 0), ErrorCode::kMalformed, "deeper");
  }
}

TEST_CASE("safetensors: shapes") {
  TempDir dir;
  SUBCASE("negative dimension") {
    check_error(
        open_header(dir, R"({"a": {"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 16]}})",
                    16),
        ErrorCode::kMalformed, "negative");
  }
  SUBCASE("element count overflows 64 bits") {
    // 2^40 x 2^40 wraps to 0 in 64-bit arithmetic, which would match an empty range.
    check_error(open_header(dir,
                            R"({"a": {"dtype": "F32", "shape": [1099511627776, 1099511627776],
                                "data_offsets": [0, 0]}})",
                            0),
                ErrorCode::kOutOfRange, "64 bits");
  }
  SUBCASE("byte size overflows 64 bits") {
    check_error(open_header(dir,
                            R"({"a": {"dtype": "F32", "shape": [4611686018427387904],
                                "data_offsets": [0, 0]}})",
                            0),
                ErrorCode::kOutOfRange, "larger than");
  }
  SUBCASE("shape disagrees with the byte range") {
    check_error(
        open_header(dir, R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}})", 16),
        ErrorCode::kMalformed, "needs 12 bytes");
  }
}

TEST_CASE("safetensors: offsets") {
  TempDir dir;
  SUBCASE("past the end of the data") {
    check_error(
        open_header(dir, R"({"a": {"dtype": "F32", "shape": [250], "data_offsets": [0, 1000]}})",
                    16),
        ErrorCode::kOutOfRange, "past the end of the data");
  }
  SUBCASE("end before begin") {
    check_error(
        open_header(dir, R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})", 8),
        ErrorCode::kMalformed, "before begin");
  }
  SUBCASE("negative offset") {
    check_error(
        open_header(dir, R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})", 8),
        ErrorCode::kMalformed, "negative");
  }
  SUBCASE("overlapping tensors") {
    check_error(open_header(dir,
                            R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                                "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})",
                            24),
                ErrorCode::kMalformed, "overlaps");
  }
  SUBCASE("two tensors on the same bytes") {
    check_error(open_header(dir,
                            R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                                "b": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})",
                            16),
                ErrorCode::kMalformed, "overlaps");
  }
  SUBCASE("a hole between tensors") {
    check_error(open_header(dir,
                            R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                "b": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}})",
                            20),
                ErrorCode::kMalformed, "belong to no tensor");
  }
  SUBCASE("a hole at the start") {
    check_error(
        open_header(dir, R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", 12),
        ErrorCode::kMalformed, "belong to no tensor");
  }
  SUBCASE("trailing bytes no tensor owns") {
    check_error(
        open_header(dir, R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 12),
        ErrorCode::kMalformed, "at the end of the data");
  }
}

TEST_CASE("safetensors: dtypes") {
  TempDir dir;
  SUBCASE("a dtype safetensors does not define is refused at open") {
    check_error(
        open_header(dir, R"({"a": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 8]}})", 8),
        ErrorCode::kUnsupported, "'Q9'");
  }
  SUBCASE("defined but not computable dtypes are checked, then refused when used") {
    const std::vector<std::uint8_t> ids(16, 0);
    const std::vector<std::uint8_t> fp8(3, 0);
    auto file = open_bytes(
        dir,
        SafetensorsBuilder().add("ids", "I64", {2}, ids).add("q", "F8_E4M3", {3}, fp8).bytes());
    REQUIRE(file.ok());
    CHECK_FALSE(file->find("ids")->dtype.has_value());
    try {
      (void)to_tensor_ref(*file->find("ids"), "x", "origin");
      FAIL("an I64 tensor became a TensorRef");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::kUnsupported);
      CHECK(std::string(e.what()).find("'ids' has dtype I64") != std::string::npos);
    }
  }
  SUBCASE("the size of a defined dtype is still checked") {
    check_error(
        open_header(dir, R"({"a": {"dtype": "I64", "shape": [2], "data_offsets": [0, 8]}})", 8),
        ErrorCode::kMalformed, "needs 16 bytes");
  }
}

TEST_CASE("safetensors: random corruption of a real file ends in a Status, never a crash") {
  TempDir dir;
  const std::string source = (hf_fixture("qwen2-tiny") / "model.safetensors").string();
  const std::string text = read_text(source);
  const std::vector<std::uint8_t> original(text.begin(), text.end());
  std::uint64_t header_len = 0;
  std::memcpy(&header_len, original.data(), 8);

  std::mt19937 rng(1234);  // fixed: a failure must reproduce
  std::uniform_int_distribution<std::size_t> in_header(0, 8 + header_len - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  const std::string digits_and_syntax = "0123456789[]{},:\"-";
  std::size_t rejected = 0;
  for (int round = 0; round < 500; ++round) {
    std::vector<std::uint8_t> bytes = original;
    const int edits = 1 + round % 4;
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = in_header(rng);
      // Mostly characters that keep the JSON plausible, so the later checks are reached.
      bytes[at] =
          round % 3 == 0
              ? static_cast<std::uint8_t>(byte(rng))
              : static_cast<std::uint8_t>(digits_and_syntax[static_cast<std::size_t>(byte(rng)) %
                                                            digits_and_syntax.size()]);
    }
    if (round % 7 == 0) bytes.resize(in_header(rng));  // truncation
    const auto file = open_bytes(dir, bytes);
    if (!file.ok()) {
      ++rejected;
      const ErrorCode code = file.status().code();
      CHECK((code == ErrorCode::kMalformed || code == ErrorCode::kOutOfRange ||
             code == ErrorCode::kUnsupported));
    }
  }
  CHECK(rejected > 400);
}
