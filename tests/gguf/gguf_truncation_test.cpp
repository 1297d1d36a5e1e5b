// Damaged files: every prefix of a valid file, and random byte corruptions of
// one, must give a Status; none may crash the reader (run under ASan/UBSan to
// also catch reads past the end that happen not to fault).
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "common/gguf/gguf_model.h"
#include "common/gguf/gguf_reader.h"
#include "tests/gguf/gguf_builder.h"
#include "tests/gguf/tiny_model.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

// A file exercising every structure the reader parses: all scalar types, strings,
// arrays of scalars, strings and arrays, and tensors of several types and ranks.
std::vector<std::uint8_t> rich_file() {
  GgufBuilder b;
  b.kv_u8("a.u8", 1).kv_i32("a.i32", -1).kv_u64("a.u64", 5).kv_f32("a.f32", 1.5f);
  b.kv_f64("a.f64", 2.5).kv_bool("a.bool", false).kv_string("a.str", "text");
  b.kv_string_array("a.strs", {"x", "yy", ""});
  b.kv_array<std::uint16_t>("a.u16s", 2, {1, 2, 3});
  ByteWriter nested;
  nested.u32(gguf_t::kArray).u64(2);
  nested.u32(gguf_t::kI8).u64(1).u8(0xFF);
  nested.u32(gguf_t::kString).u64(1).str("z");
  b.kv_raw("a.nested", gguf_t::kArray, nested.take());
  b.kv_u32("general.alignment", 64);
  b.alignment = 64;
  b.tensor({"t.f32", 0, {4, 2}, std::vector<std::uint8_t>(32, 1), std::nullopt});
  b.tensor({"t.q8", 8, {32, 1, 2}, std::vector<std::uint8_t>(68, 2), std::nullopt});
  b.tensor({"t.q4k", 12, {256}, std::vector<std::uint8_t>(144, 3), std::nullopt});
  return b.build();
}

bool model_opens(const std::string& path) {
  return open_gguf_model(path).ok();
}

}  // namespace

TEST_CASE("every truncation of a valid file fails cleanly") {
  TempDir dir;
  const auto whole = rich_file();
  REQUIRE(GgufFile::open(dir.write("whole.gguf", whole)).ok());
  const std::string path = dir.file("cut.gguf");
  for (std::size_t n = 0; n < whole.size(); ++n) {
    CAPTURE(n);
    dir.write("cut.gguf", std::vector<std::uint8_t>(whole.begin(), whole.begin() + n));
    auto file = GgufFile::open(path);
    REQUIRE(!file.ok());
    REQUIRE(file.status().code() == ErrorCode::kMalformed);
  }
}

TEST_CASE("every truncation of a valid model fails cleanly") {
  TempDir dir;
  const auto whole = tiny_model().build();
  REQUIRE(model_opens(dir.write("whole.gguf", whole)));
  const std::string path = dir.file("cut.gguf");
  for (std::size_t n = 0; n < whole.size(); ++n) {
    CAPTURE(n);
    dir.write("cut.gguf", std::vector<std::uint8_t>(whole.begin(), whole.begin() + n));
    auto model = open_gguf_model(path);
    REQUIRE(!model.ok());
    REQUIRE(model.status().code() == ErrorCode::kMalformed);
  }
}

TEST_CASE("random corruption never crashes the reader or the model loader") {
  TempDir dir;
  const auto whole = tiny_model().build();
  const std::string path = dir.file("fuzz.gguf");
  std::mt19937_64 rng(42);
  int opened = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    auto bytes = whole;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      // Bias towards the header, where the structure lives.
      const std::size_t limit =
          rng() % 2 == 0 ? std::min<std::size_t>(bytes.size(), 2048) : bytes.size();
      const std::size_t at = rng() % limit;
      switch (rng() % 3) {
        case 0:
          bytes[at] = static_cast<std::uint8_t>(rng());
          break;
        case 1:
          bytes[at] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
          break;
        default:
          bytes[at] = (rng() % 2) ? 0xFF : 0x00;
          break;
      }
    }
    dir.write("fuzz.gguf", bytes);
    auto model = open_gguf_model(path);  // must return, whatever it says
    if (model.ok()) {
      ++opened;
    } else {
      CHECK(model.status().code() != ErrorCode::kInternal);
    }
  }
  MESSAGE(opened << " of 3000 corrupted files still opened (corruption in weights is invisible)");
}
