// FP8 E4M3 (common/fp8.h) against brute force: every code decodes as the OCP format
// defines it, and encoding picks the nearest code, ties to even, saturating at 448.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "common/fp8.h"

using namespace conveyor;

namespace {

// The format's definition, written independently of the implementation.
double reference_value(int code) {
  const int sign = code & 0x80 ? -1 : 1;
  const int exponent = (code >> 3) & 0xF;
  const int mantissa = code & 7;
  if (exponent == 0) return sign * std::ldexp(mantissa, -9);
  return sign * std::ldexp(8 + mantissa, exponent - 10);
}

// The nearest non-NaN code of the value's sign, ties to the even code (mantissa bit 0
// clear), beyond 448 saturating.
std::uint8_t brute_force_encode(float value) {
  const int sign = std::signbit(value) ? 0x80 : 0;
  const double magnitude = std::fabs(static_cast<double>(value));
  int best = 0;
  double best_distance = std::numeric_limits<double>::infinity();
  for (int c = 0; c <= 0x7E; ++c) {
    const double distance = std::fabs(reference_value(c) - magnitude);
    if (distance < best_distance || (distance == best_distance && (c & 1) == 0)) {
      best = c;
      best_distance = distance;
    }
  }
  return static_cast<std::uint8_t>(sign | best);
}

}  // namespace

TEST_CASE("every E4M3 code decodes as the format defines it") {
  for (int c = 0; c < 256; ++c) {
    CAPTURE(c);
    const float v = fp8_e4m3_to_fp32(static_cast<std::uint8_t>(c));
    if ((c & 0x7F) == 0x7F) {
      CHECK(std::isnan(v));
      continue;
    }
    CHECK(static_cast<double>(v) == reference_value(c));
    CHECK(std::signbit(v) == ((c & 0x80) != 0));  // 0x80 is -0
  }
  CHECK(fp8_e4m3_to_fp32(kFp8E4M3MaxCode) == 448.0f);
  CHECK(fp8_e4m3_to_fp32(0x01) == 0x1p-9f);
  CHECK(fp8_e4m3_to_fp32(0x08) == 0x1p-6f);
  CHECK(fp8_e4m3_to_fp32(0x38) == 1.0f);
}

TEST_CASE("every non-NaN E4M3 value encodes to its own code") {
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7F) == 0x7F) continue;
    CAPTURE(c);
    CHECK(fp32_to_fp8_e4m3(fp8_e4m3_to_fp32(static_cast<std::uint8_t>(c))) == c);
  }
}

TEST_CASE("E4M3 encoding rounds to nearest, ties to even, like brute force") {
  // Midpoints between neighbouring codes, and a hair either side of them.
  for (int c = 0; c < 0x7E; ++c) {
    const auto lo = static_cast<float>(reference_value(c));
    const auto hi = static_cast<float>(reference_value(c + 1));
    const float mid = (lo + hi) / 2;  // exact: both have few significant bits
    CAPTURE(c);
    for (float v : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f), -mid,
                    -std::nextafter(mid, 0.0f)}) {
      CAPTURE(v);
      CHECK(fp32_to_fp8_e4m3(v) == brute_force_encode(v));
    }
    CHECK(fp32_to_fp8_e4m3(mid) == ((c & 1) == 0 ? c : c + 1));
  }
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> exponent(-12.0f, 9.5f);
  for (int i = 0; i < 20000; ++i) {
    const float v = std::exp2(exponent(rng)) * (rng() & 1 ? -1.0f : 1.0f);
    CAPTURE(v);
    REQUIRE(fp32_to_fp8_e4m3(v) == brute_force_encode(v));
  }
}

TEST_CASE("E4M3 encoding saturates at 448 and keeps NaN") {
  for (float v : {448.0f, 449.0f, 464.0f, 480.0f, 1e6f, std::numeric_limits<float>::max(),
                  std::numeric_limits<float>::infinity()}) {
    CAPTURE(v);
    CHECK(fp32_to_fp8_e4m3(v) == 0x7E);
    CHECK(fp32_to_fp8_e4m3(-v) == 0xFE);
  }
  CHECK((fp32_to_fp8_e4m3(std::numeric_limits<float>::quiet_NaN()) & 0x7F) == 0x7F);
  CHECK(fp32_to_fp8_e4m3(0.0f) == 0x00);
  CHECK(fp32_to_fp8_e4m3(-0.0f) == 0x80);
  CHECK(fp32_to_fp8_e4m3(0x1p-11f) == 0x00);      // a quarter of the smallest step
  CHECK(fp32_to_fp8_e4m3(0x1p-10f) == 0x00);      // half of it: a tie, to 0 (even)
  CHECK(fp32_to_fp8_e4m3(3 * 0x1p-10f) == 0x02);  // 1.5 steps: a tie, to 2 (even)
  CHECK(fp32_to_fp8_e4m3(std::numeric_limits<float>::denorm_min()) == 0x00);
}

TEST_CASE("E4M3 round trips within a relative 2^-4 in the normal range") {
  std::mt19937 rng(6);
  std::uniform_real_distribution<float> exponent(-6.0f, 8.8f);
  for (int i = 0; i < 20000; ++i) {
    const float v = std::exp2(exponent(rng));
    const float back = fp8_e4m3_to_fp32(fp32_to_fp8_e4m3(v));
    REQUIRE(std::fabs(back - v) <= v * 0x1p-4f);
  }
}
