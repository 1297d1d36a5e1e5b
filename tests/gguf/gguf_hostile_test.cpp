// Hostile GGUF files: each bug class seen in other loaders must end in a clear
// Status (the right code, a message that names the problem), never a crash or
// an allocation sized by a number the file merely claims.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/gguf/gguf_reader.h"
#include "tests/gguf/gguf_builder.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

constexpr std::uint64_t kHuge = 1ull << 63;

Status open_status(const std::vector<std::uint8_t>& bytes) {
  TempDir dir;
  auto file = GgufFile::open(dir.write("hostile.gguf", bytes));
  return file.ok() ? Status() : file.status();
}

void expect_error(const std::vector<std::uint8_t>& bytes, ErrorCode code,
                  const std::string& needle) {
  const Status s = open_status(bytes);
  CAPTURE(s.to_string());
  REQUIRE(!s.ok());
  CHECK(s.code() == code);
  CHECK(s.message().find(needle) != std::string::npos);
  CHECK(s.message().find("hostile.gguf: ") != std::string::npos);  // names the file
}

GgufBuilder one_tensor() {
  GgufBuilder b;
  b.kv_string("general.architecture", "llama");
  b.tensor({"w", 0, {8}, std::vector<std::uint8_t>(32, 0), std::nullopt});
  return b;
}

// A header with raw bytes after the counts, for values the builder cannot express.
std::vector<std::uint8_t> header_then(std::uint64_t tensors, std::uint64_t kvs,
                                      const std::vector<std::uint8_t>& rest) {
  ByteWriter w;
  w.u32(0x46554747).u32(3).u64(tensors).u64(kvs).raw(rest);
  return w.take();
}

}  // namespace

TEST_CASE("the header: magic and version") {
  auto bytes = one_tensor().build();
  bytes[0] = 'G', bytes[1] = 'G', bytes[2] = 'M', bytes[3] = 'L';
  expect_error(bytes, ErrorCode::kMalformed, "not a GGUF file: magic is 'GGML'");

  GgufBuilder v1 = one_tensor();
  v1.version = 1;
  expect_error(v1.build(), ErrorCode::kUnsupported, "GGUF v1 is not supported");

  GgufBuilder v4 = one_tensor();
  v4.version = 4;
  expect_error(v4.build(), ErrorCode::kUnsupported, "GGUF version 4");

  GgufBuilder big_endian = one_tensor();
  big_endian.version = 0x03000000;
  expect_error(big_endian.build(), ErrorCode::kUnsupported, "big-endian");

  expect_error({}, ErrorCode::kMalformed, "truncated at offset 0 reading the magic");
}

TEST_CASE("counts larger than the file could hold") {
  SUBCASE("tensor count 2^63") {
    GgufBuilder b = one_tensor();
    b.tensor_count_override = kHuge;
    expect_error(b.build(), ErrorCode::kMalformed, "tensors, more than the");
  }
  SUBCASE("metadata count 2^63") {
    GgufBuilder b = one_tensor();
    b.kv_count_override = kHuge;
    expect_error(b.build(), ErrorCode::kMalformed, "metadata entries and");
  }
  SUBCASE("metadata count just above what the file holds") {
    GgufBuilder b = one_tensor();
    b.kv_count_override = 1000;
    expect_error(b.build(), ErrorCode::kMalformed, "more than the");
  }
  SUBCASE("a tensor count above the sane limit in a file large enough to claim it") {
    TempDir dir;
    const std::string path =
        dir.write("many.gguf", header_then(GgufLimits::kMaxTensors + 1, 0, {}));
    std::filesystem::resize_file(path, 40u << 20);  // sparse: costs no disk
    auto file = GgufFile::open(path);
    REQUIRE(!file.ok());
    CHECK(file.status().code() == ErrorCode::kOutOfRange);
    CHECK(file.status().message().find("tensor count") != std::string::npos);
  }
}

TEST_CASE("string lengths near 2^63 or past the end of the file") {
  SUBCASE("key length 2^63") {
    ByteWriter w;
    w.u64(kHuge).u32(gguf_t::kU8).u8(0).u8(0);  // the 14 bytes the smallest entry needs
    expect_error(header_then(0, 1, w.take()), ErrorCode::kMalformed,
                 "the key of metadata entry 0 at offset 24 declares 9223372036854775808 bytes");
  }
  SUBCASE("string value one byte longer than the file") {
    ByteWriter w;
    w.str("k").u32(gguf_t::kString).u64(6).raw({'a', 'b', 'c', 'd', 'e'});
    expect_error(header_then(0, 1, w.take()), ErrorCode::kMalformed,
                 "the string value of metadata key 'k'");
  }
  SUBCASE("a string element of an array with length 2^63") {
    ByteWriter w;
    w.str("k").u32(gguf_t::kArray).u32(gguf_t::kString).u64(1).u64(kHuge);
    expect_error(header_then(0, 1, w.take()), ErrorCode::kMalformed,
                 "a string element of metadata key 'k'");
  }
  SUBCASE("a tensor name longer than the limit") {
    GgufBuilder b;
    b.tensor({std::string(300, 'n'), 0, {8}, std::vector<std::uint8_t>(32, 0), std::nullopt});
    expect_error(b.build(), ErrorCode::kOutOfRange, "above the limit of 256");
  }
  SUBCASE("empty key and empty tensor name") {
    GgufBuilder b;
    b.kv_u32("", 1);
    expect_error(b.build(), ErrorCode::kMalformed, "empty key");
    GgufBuilder t;
    t.tensor({"", 0, {8}, std::vector<std::uint8_t>(32, 0), std::nullopt});
    expect_error(t.build(), ErrorCode::kMalformed, "empty name");
  }
}

TEST_CASE("array lengths near 2^63 for every kind of element") {
  for (std::uint32_t elem : {gguf_t::kU8, gguf_t::kI64, gguf_t::kString, gguf_t::kArray}) {
    CAPTURE(elem);
    ByteWriter w;
    w.u32(elem).u64(kHuge);
    GgufBuilder b = one_tensor();
    b.kv_raw("tokenizer.ggml.tokens", gguf_t::kArray, w.take());
    expect_error(b.build(), ErrorCode::kMalformed,
                 "metadata key 'tokenizer.ggml.tokens' at offset");
  }
  // 2^61 int64 elements: count * 8 wraps to 0 in 64 bits; the check must not wrap.
  ByteWriter w;
  w.u32(gguf_t::kI64).u64(1ull << 61);
  GgufBuilder b = one_tensor();
  b.kv_raw("k", gguf_t::kArray, w.take());
  expect_error(b.build(), ErrorCode::kMalformed, "declares 2305843009213693952 elements");
}

TEST_CASE("element-type confusion and unknown types in metadata") {
  SUBCASE("unknown value type") {
    GgufBuilder b = one_tensor();
    b.kv_raw("k", 13, {0, 0, 0, 0});
    expect_error(b.build(), ErrorCode::kMalformed, "metadata key 'k' has unknown value type 13");
  }
  SUBCASE("unknown array element type") {
    ByteWriter w;
    w.u32(99).u64(1).u8(0);
    GgufBuilder b = one_tensor();
    b.kv_raw("k", gguf_t::kArray, w.take());
    expect_error(b.build(), ErrorCode::kMalformed, "array of unknown element type 99");
  }
  SUBCASE("a bool that is neither 0 nor 1") {
    GgufBuilder b = one_tensor();
    b.kv_raw("k", gguf_t::kBool, {7});
    expect_error(b.build(), ErrorCode::kMalformed, "bool of value 7");
  }
  SUBCASE("arrays nested deeper than the limit") {
    ByteWriter w;
    for (int i = 0; i < 6; ++i) {
      w.u32(gguf_t::kArray).u64(1);
    }
    w.u32(gguf_t::kU8).u64(0);
    GgufBuilder b = one_tensor();
    b.kv_raw("k", gguf_t::kArray, w.take());
    expect_error(b.build(), ErrorCode::kOutOfRange, "nests arrays deeper than 4");
  }
  SUBCASE("duplicate keys") {
    GgufBuilder b = one_tensor();
    b.kv_u32("k", 1).kv_append_raw("k", gguf_t::kU32, GgufBuilder::encode<std::uint32_t>(2));
    expect_error(b.build(), ErrorCode::kMalformed, "duplicate metadata key 'k'");
  }
}

TEST_CASE("tensor dimensions") {
  auto with_dims = [](std::vector<std::uint64_t> ne, std::uint32_t type = 0) {
    GgufBuilder b;
    b.tensor({"w", type, std::move(ne), std::vector<std::uint8_t>(32, 0), std::nullopt});
    return b.build();
  };
  expect_error(with_dims({1ull << 32, 1ull << 32}), ErrorCode::kOutOfRange,
               "tensor 'w' has dimensions whose element count overflows");
  expect_error(with_dims({kHuge}), ErrorCode::kOutOfRange, "overflows");
  expect_error(with_dims({3, 5, 7, 11, 1ull << 62}), ErrorCode::kMalformed,
               "tensor 'w' has 5 dimensions");
  expect_error(with_dims({}), ErrorCode::kMalformed, "tensor 'w' has 0 dimensions");
  expect_error(with_dims({8, 0}), ErrorCode::kMalformed, "zero-length dimension 1");
  // 2^62 f32 elements fit an int64 but not their byte size in a uint64.
  expect_error(with_dims({1ull << 31, 1ull << 31}), ErrorCode::kOutOfRange, "byte size overflows");
  expect_error(with_dims({16}, 8), ErrorCode::kMalformed,
               "rows of 16 elements, not a whole number of q8_0 blocks of 32");
}

TEST_CASE("tensor types Conveyor cannot read are named") {
  GgufBuilder b;
  b.tensor({"blk.0.ffn_down.weight", 13, {256}, std::vector<std::uint8_t>(176, 0), std::nullopt});
  expect_error(b.build(), ErrorCode::kUnsupported,
               "tensor 'blk.0.ffn_down.weight' has ggml type Q5_K (13)");
  GgufBuilder u;
  u.tensor({"w", 999, {8}, std::vector<std::uint8_t>(32, 0), std::nullopt});
  expect_error(u.build(), ErrorCode::kUnsupported, "unknown (999)");
}

TEST_CASE("tensor offsets and extents") {
  SUBCASE("offset past the end of the file") {
    GgufBuilder b = one_tensor();
    b.tensors()[0].offset = 1ull << 40;
    expect_error(
        b.build(), ErrorCode::kMalformed,
        "tensor 'w' (32 bytes at data offset 1099511627776) extends past the end of the file");
  }
  SUBCASE("offset near 2^64: offset + size must not wrap") {
    GgufBuilder b = one_tensor();
    b.tensors()[0].offset = ~0ull - 31;  // a multiple of 32
    expect_error(b.build(), ErrorCode::kMalformed, "extends past the end of the file");
  }
  SUBCASE("data cut short") {
    GgufBuilder b = one_tensor();
    b.tensors()[0].data.resize(16);
    expect_error(b.build(), ErrorCode::kMalformed, "extends past the end of the file");
  }
  SUBCASE("misaligned offset") {
    GgufBuilder b = one_tensor();
    b.pad_after_last_tensor = true;
    b.tensors()[0].offset = 4;
    expect_error(b.build(), ErrorCode::kMalformed,
                 "data offset 4, not a multiple of the alignment 32");
  }
  SUBCASE("overlapping tensors") {
    GgufBuilder b = one_tensor();
    b.tensor({"v", 0, {8}, std::vector<std::uint8_t>(32, 0), 0});
    expect_error(b.build(), ErrorCode::kMalformed, "tensors 'w' and 'v' overlap");
  }
  SUBCASE("duplicate tensor names") {
    GgufBuilder b = one_tensor();
    b.tensors().push_back(b.tensors()[0]);
    expect_error(b.build(), ErrorCode::kMalformed, "duplicate tensor name 'w'");
  }
  SUBCASE("tensor infos with no data section at all") {
    GgufBuilder b = one_tensor();
    auto bytes = b.build();
    bytes.resize(bytes.size() - 32);  // drop the data and (most of) the padding
    const Status s = open_status(bytes);
    REQUIRE(!s.ok());
    CHECK(s.code() == ErrorCode::kMalformed);
  }
}

TEST_CASE("general.alignment must be a sane power of two") {
  auto with_alignment = [](auto set) {
    GgufBuilder b = one_tensor();
    set(b);
    return b.build();
  };
  expect_error(with_alignment([](GgufBuilder& b) { b.kv_u32("general.alignment", 0); }),
               ErrorCode::kMalformed, "general.alignment 0 is not a non-zero power of two");
  expect_error(with_alignment([](GgufBuilder& b) { b.kv_u32("general.alignment", 48); }),
               ErrorCode::kMalformed, "general.alignment 48 is not a non-zero power of two");
  expect_error(with_alignment([](GgufBuilder& b) { b.kv_i32("general.alignment", -32); }),
               ErrorCode::kMalformed, "not a non-zero power of two");
  expect_error(with_alignment([](GgufBuilder& b) { b.kv_u32("general.alignment", 1u << 31); }),
               ErrorCode::kOutOfRange, "general.alignment 2147483648 is above the limit");
  expect_error(with_alignment([](GgufBuilder& b) { b.kv_string("general.alignment", "32"); }),
               ErrorCode::kMalformed,
               "metadata key 'general.alignment' is string, expected an integer");
  // A legitimate alignment that the tensor offsets do not respect.
  expect_error(with_alignment([](GgufBuilder& b) {
                 b.kv_u32("general.alignment", 64);
                 b.tensor({"v", 0, {8}, std::vector<std::uint8_t>(32, 0), std::nullopt});
               }),
               ErrorCode::kMalformed, "not a multiple of the alignment 64");
}
