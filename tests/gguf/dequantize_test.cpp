#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/dequantize.h"
#include "common/gguf/gguf_reader.h"
#include "tests/gguf/gguf_builder.h"

using namespace conveyor;

namespace {

// binary16 -> double by the definition, independent of the code under test.
double half_by_definition(std::uint16_t h) {
  const double sign = (h >> 15) ? -1.0 : 1.0;
  const int exponent = (h >> 10) & 0x1F;
  const int mantissa = h & 0x3FF;
  if (exponent == 0) return sign * std::ldexp(mantissa, -24);
  if (exponent == 31) return mantissa == 0 ? sign * HUGE_VAL : std::nan("");
  return sign * std::ldexp(1024 + mantissa, exponent - 25);
}

bool same_bits_or_both_nan(float a, float b) {
  if (std::isnan(a) && std::isnan(b)) return true;
  return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b);
}

void put_f16(std::vector<std::uint8_t>& b, std::size_t at, std::uint16_t h) {
  b[at] = static_cast<std::uint8_t>(h & 0xFF);
  b[at + 1] = static_cast<std::uint8_t>(h >> 8);
}

constexpr std::uint16_t kHalfOne = 0x3C00;   // 1.0
constexpr std::uint16_t kHalfHalf = 0x3800;  // 0.5
constexpr std::uint16_t kHalfTwo = 0x4000;   // 2.0

}  // namespace

TEST_CASE("fp16 -> fp32 is exact for all 65536 inputs") {
  for (std::uint32_t i = 0; i < 65536; ++i) {
    const auto h = static_cast<std::uint16_t>(i);
    const float got = fp16_to_fp32(h);
    const double want = half_by_definition(h);
    if (std::isnan(want)) {
      REQUIRE(std::isnan(got));
      // Sign and payload survive: the top mantissa bits are the half's mantissa.
      const std::uint32_t bits = std::bit_cast<std::uint32_t>(got);
      REQUIRE((bits >> 31) == (i >> 15));
      REQUIRE(((bits >> 13) & 0x3FF) == (i & 0x3FF));
    } else {
      REQUIRE(static_cast<double>(got) == want);
      REQUIRE(std::signbit(got) == ((i >> 15) != 0));  // -0 stays -0
    }
  }
}

TEST_CASE("bf16 is the upper half of an f32") {
  CHECK(bf16_to_fp32(0x3F80) == 1.0f);
  CHECK(bf16_to_fp32(0xC040) == -3.0f);
  CHECK(std::isinf(bf16_to_fp32(0x7F80)));
  CHECK(std::isnan(bf16_to_fp32(0x7FC1)));
  CHECK(std::bit_cast<std::uint32_t>(bf16_to_fp32(0x0001)) == 0x00010000u);  // subnormal kept
}

TEST_CASE("dequantize_row decodes hand-built blocks of every quantised type") {
  SUBCASE("q8_0: y = q * d") {
    std::vector<std::uint8_t> b(34, 0);
    put_f16(b, 0, kHalfHalf);
    for (int j = 0; j < 32; ++j) {
      b[2 + j] = static_cast<std::uint8_t>(static_cast<std::int8_t>(j - 16));
    }
    std::vector<float> y(32);
    dequantize_row(DType::kQ8_0, b.data(), y.data(), 32);
    for (int j = 0; j < 32; ++j) {
      CHECK(y[j] == 0.5f * static_cast<float>(j - 16));
    }
  }
  SUBCASE("q4_0: low nibbles first, y = (q - 8) * d") {
    std::vector<std::uint8_t> b(18, 0);
    put_f16(b, 0, kHalfTwo);
    for (int j = 0; j < 16; ++j) {
      b[2 + j] = static_cast<std::uint8_t>(j | ((15 - j) << 4));
    }
    std::vector<float> y(32);
    dequantize_row(DType::kQ4_0, b.data(), y.data(), 32);
    for (int j = 0; j < 16; ++j) {
      CHECK(y[j] == 2.0f * static_cast<float>(j - 8));
      CHECK(y[j + 16] == 2.0f * static_cast<float>(15 - j - 8));
    }
  }
  SUBCASE("q4_1: y = q * d + m") {
    std::vector<std::uint8_t> b(20, 0);
    put_f16(b, 0, kHalfHalf);
    put_f16(b, 2, 0xBC00);  // m = -1
    for (int j = 0; j < 16; ++j) {
      b[4 + j] = static_cast<std::uint8_t>(j | (3 << 4));
    }
    std::vector<float> y(32);
    dequantize_row(DType::kQ4_1, b.data(), y.data(), 32);
    for (int j = 0; j < 16; ++j) {
      CHECK(y[j] == 0.5f * static_cast<float>(j) - 1.0f);
      CHECK(y[j + 16] == 0.5f);
    }
  }
  SUBCASE("q4_k: 6-bit scales and mins, including the packed high bits") {
    std::vector<std::uint8_t> b(144, 0);
    put_f16(b, 0, kHalfOne);   // d
    put_f16(b, 2, kHalfHalf);  // dmin
    // Sub-blocks 0..3: scale = j + 1, min = j; sub-blocks 4..7: scale 40 + j, min 50 + j,
    // which need the two high bits stored in bytes 0..7.
    for (int j = 0; j < 4; ++j) {
      const int sc_hi = 40 + j, mn_hi = 50 + j;
      b[4 + j] = static_cast<std::uint8_t>((j + 1) | ((sc_hi >> 4) << 6));
      b[4 + j + 4] = static_cast<std::uint8_t>(j | ((mn_hi >> 4) << 6));
      b[4 + j + 8] = static_cast<std::uint8_t>((sc_hi & 0xF) | ((mn_hi & 0xF) << 4));
    }
    for (int l = 0; l < 128; ++l) {
      b[16 + l] = static_cast<std::uint8_t>((l % 16) | (((l + 3) % 16) << 4));
    }
    std::vector<float> y(256);
    dequantize_row(DType::kQ4_K, b.data(), y.data(), 256);
    for (int sub = 0; sub < 8; ++sub) {
      const int sc = sub < 4 ? sub + 1 : 40 + (sub - 4);
      const int mn = sub < 4 ? sub : 50 + (sub - 4);
      for (int l = 0; l < 32; ++l) {
        const std::uint8_t byte = b[16 + (sub / 2) * 32 + l];
        const int q = sub % 2 == 0 ? (byte & 0xF) : (byte >> 4);
        CHECK(y[sub * 32 + l] ==
              static_cast<float>(sc) * static_cast<float>(q) - 0.5f * static_cast<float>(mn));
      }
    }
  }
  SUBCASE("q6_k: 4 low + 2 high bits, signed scales, y = d * scale * (q - 32)") {
    std::vector<std::uint8_t> b(210, 0);
    put_f16(b, 208, kHalfOne);
    for (int i = 0; i < 16; ++i) {
      b[192 + i] = static_cast<std::uint8_t>(static_cast<std::int8_t>(i - 8));
    }
    for (int i = 0; i < 128; ++i) {
      b[i] = static_cast<std::uint8_t>(i * 7);
    }
    for (int i = 0; i < 64; ++i) {
      b[128 + i] = static_cast<std::uint8_t>(i * 13);
    }
    std::vector<float> y(256);
    dequantize_row(DType::kQ6_K, b.data(), y.data(), 256);
    // Element e of a 128-half: ql nibble from byte (e % 64), high bits from qh (e % 32).
    for (int e = 0; e < 256; ++e) {
      const int half = e / 128, r = e % 128, quarter = r / 32, l = r % 32;
      const std::uint8_t ql = b[half * 64 + l + (quarter % 2) * 32];
      const int low = quarter < 2 ? (ql & 0xF) : (ql >> 4);
      const int high = (b[128 + half * 32 + l] >> (2 * quarter)) & 3;
      const int scale = static_cast<std::int8_t>(b[192 + half * 8 + l / 16 + 2 * quarter]);
      CHECK(y[e] == static_cast<float>(scale) * static_cast<float>((low | (high << 4)) - 32));
    }
  }
}

TEST_CASE("dequantize_row refuses partial blocks") {
  std::vector<std::uint8_t> b(34, 0);
  std::vector<float> y(33);
  CHECK_THROWS_AS(dequantize_row(DType::kQ8_0, b.data(), y.data(), 33), Error);
  CHECK_THROWS_AS(dequantize_row(DType::kF32, b.data(), y.data(), -1), Error);
}

TEST_CASE("dequantize_tensor checks the tensor against its shape and the output size") {
  std::vector<std::uint8_t> bytes(8, 0);
  TensorRef t{"w", DType::kF32, {2, 1}, bytes};
  CHECK(dequantize_tensor(t) == std::vector<float>{0.0f, 0.0f});
  std::vector<float> small(1);
  CHECK_THROWS_AS(dequantize_tensor(t, small), Error);
  TensorRef lying{"w", DType::kF32, {3, 1}, bytes};
  CHECK_THROWS_AS(dequantize_tensor(lying), Error);
  TensorRef ragged{"q", DType::kQ8_0, {2, 16}, std::span<const std::uint8_t>(bytes.data(), 0)};
  CHECK_THROWS_AS(dequantize_tensor(ragged), Error);
}

TEST_CASE("every supported type dequantises bit-exactly as gguf-py's reference") {
  const std::string dir = std::string(CONVEYOR_FIXTURES_DIR) + "/gguf/";
  auto file = GgufFile::open(dir + "dequant.gguf");
  REQUIRE_MESSAGE(file.ok(), file.status().to_string());
  std::ifstream in(dir + "dequant.json");
  REQUIRE(in.good());
  const auto json = nlohmann::json::parse(in);
  std::size_t types_seen = 0;
  for (const auto& t : json.at("tensors")) {
    const std::string name = t.at("name");
    CAPTURE(name);
    const GgufTensorInfo* info = file->find_tensor(name);
    REQUIRE(info != nullptr);
    const TensorRef ref = file->tensor_ref(*info);
    CHECK(std::string(dtype_name(ref.dtype)) == t.at("type").get<std::string>());
    CHECK(ref.shape == t.at("shape").get<std::vector<std::int64_t>>());
    const auto want = t.at("bits").get<std::vector<std::uint32_t>>();
    const std::vector<float> got = dequantize_tensor(ref);
    REQUIRE(got.size() == want.size());
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      if (!same_bits_or_both_nan(got[i], std::bit_cast<float>(want[i]))) {
        if (++mismatches <= 5) {
          MESSAGE(name << "[" << i << "]: got " << got[i] << " want "
                       << std::bit_cast<float>(want[i]));
        }
      }
    }
    CHECK(mismatches == 0);
    ++types_seen;
  }
  CHECK(types_seen == 8);
}
