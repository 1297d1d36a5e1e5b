#include "common/synthetic/random_values.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "common/fp8.h"
#include "common/half.h"
#include "common/sparse24.h"

namespace conveyor {
namespace {

class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() { return mix64(state_ += 0x9E3779B97F4A7C15ull); }

 private:
  std::uint64_t state_;
};

// Standard deviations of integer quants drawn uniformly from n levels: sqrt((n^2-1)/12).
const float kInt8Std = std::sqrt((256.0f * 256.0f - 1) / 12);  // Q8_0: -128..127
const float kNibbleStd = std::sqrt((16.0f * 16.0f - 1) / 12);  // Q4_*: 0..15
const float kSixBitStd = std::sqrt((64.0f * 64.0f - 1) / 12);  // Q6_K: 0..63

// Q4_K and Q6_K sub-block scales (and Q4_K mins): all the same, so that, as for the
// other types, one scale magnitude serves the whole tensor.
constexpr std::uint8_t kKQuantSubScale = 32;

std::uint16_t f32_to_bf16(float x) {  // round to nearest even; inputs are finite
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  return static_cast<std::uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

void put_u16(std::uint8_t* p, unsigned v) {  // the low 16 bits, little-endian
  p[0] = static_cast<std::uint8_t>(v & 0xFF);
  p[1] = static_cast<std::uint8_t>((v >> 8) & 0xFF);
}

void put_random(SplitMix64& rng, std::uint8_t* p, int bytes) {  // bytes: a multiple of 8
  for (int i = 0; i < bytes; i += 8) {
    const std::uint64_t word = rng.next();
    std::memcpy(p + i, &word, sizeof(word));
  }
}

// Uniform values in (-half_width, half_width) on 65536 levels, 16 random bits each.
// Works in batches so that the conversions below vectorise: store(first, values,
// count) writes elements [first, first + count).
constexpr std::int64_t kBatch = 256;

template <typename Store>
void fill_uniform(SplitMix64& rng, float half_width, std::int64_t n, Store store) {
  const float step = half_width / 32768.0f;
  std::int16_t levels[kBatch];
  float values[kBatch];
  for (std::int64_t first = 0; first < n; first += kBatch) {
    for (std::int64_t w = 0; w < kBatch; w += 4) {
      const std::uint64_t word = rng.next();
      std::memcpy(levels + w, &word, sizeof(word));
    }
    for (std::int64_t i = 0; i < kBatch; ++i) {
      values[i] = (static_cast<float>(levels[i]) + 0.5f) * step;
    }
    store(first, values, std::min(kBatch, n - first));
  }
}

// Writes `count` (at most kBatch) values converted by `convert` to 16 bits at `out`, in
// host byte order, little-endian on every target (as GGUF and safetensors are).
template <typename Convert>
void store_halves(std::uint8_t* out, const float* values, std::int64_t count, Convert convert) {
  std::uint16_t halves[kBatch];
  for (std::int64_t i = 0; i < count; ++i)
    halves[i] = convert(values[i]);
  std::memcpy(out, halves, static_cast<std::size_t>(count) * sizeof(std::uint16_t));
}

void fill_plain(DType dtype, float stddev, SplitMix64& rng, std::int64_t n, std::uint8_t* out) {
  const float half_width = stddev * std::sqrt(3.0f);  // uniform on [-a, a]: std a / sqrt(3)
  switch (dtype) {
    case DType::kF32:
      return fill_uniform(
          rng, half_width, n, [out](std::int64_t first, const float* values, std::int64_t count) {
            std::memcpy(out + 4 * first, values, static_cast<std::size_t>(count) * sizeof(float));
          });
    case DType::kF16:
      return fill_uniform(rng, half_width, n,
                          [out](std::int64_t first, const float* values, std::int64_t count) {
                            store_halves(out + 2 * first, values, count, fp32_to_fp16);
                          });
    default:  // kBF16
      return fill_uniform(rng, half_width, n,
                          [out](std::int64_t first, const float* values, std::int64_t count) {
                            store_halves(out + 2 * first, values, count, f32_to_bf16);
                          });
  }
}

// Random f16 sign bits (0 or 0x8000), 64 from each random word.
class SignBits {
 public:
  explicit SignBits(SplitMix64& rng) : rng_(rng) {}
  std::uint16_t next() {
    if (left_ == 0) {
      bits_ = rng_.next();
      left_ = 64;
    }
    --left_;
    const auto sign = static_cast<std::uint16_t>((bits_ & 1u) << 15);
    bits_ >>= 1;
    return sign;
  }

 private:
  SplitMix64& rng_;
  std::uint64_t bits_ = 0;
  int left_ = 0;
};

// The six ways a 2:4 group keeps two of its four positions.
constexpr int kS24Pairs[6][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};

// S24_F16 blocks: 8 uniform f16 values (of standard deviation sqrt(2) * stddev, so that
// with the zeros the block's values have stddev) at random positions, each of a
// group's six choices equally likely.
void fill_sparse24(float stddev, SplitMix64& rng, std::int64_t blocks, std::uint8_t* out) {
  const float half_width = stddev * std::sqrt(2.0f) * std::sqrt(3.0f);
  const float step = half_width / 32768.0f;
  for (std::int64_t b = 0; b < blocks; ++b) {
    std::uint8_t* block = out + b * kS24BlockBytes;
    std::int16_t levels[8];
    for (int w = 0; w < 8; w += 4) {
      const std::uint64_t word = rng.next();
      std::memcpy(levels + w, &word, sizeof(word));
    }
    for (int i = 0; i < 8; ++i)
      put_u16(block + 2 * i, fp32_to_fp16((static_cast<float>(levels[i]) + 0.5f) * step));
    const std::uint64_t choices = rng.next();
    unsigned meta = 0;
    for (int g = 0; g < 4; ++g) {
      // 16 random bits scaled to 0..5: the top of their product with 6.
      const auto pair = ((choices >> (16 * g)) & 0xFFFFu) * 6 >> 16;
      meta |= s24_group_meta(kS24Pairs[pair][0], kS24Pairs[pair][1], g);
    }
    put_u16(block + kS24MetaOffset, meta);
  }
}

// One block per iteration, as laid out in common/dequantize.cpp. Each block's f16
// scales (and min) carry a random sign: Q8_0's levels (-128..127), Q4_0's (-8..7) and
// Q6_K's (-32..31) lean half a step below zero, and a lean that every row of every
// matrix shares is a direction that a deep stack amplifies layer after layer, until
// every token's logits are the same. With random signs no direction is shared.
void fill_quantized(DType dtype, float stddev, SplitMix64& rng, std::int64_t blocks,
                    std::uint8_t* out) {
  const DTypeLayout layout = dtype_layout(dtype);
  SignBits signs(rng);
  // Scale magnitudes by type: quants of standard deviation q_std under a scale d
  // (times a fixed sub-block scale for the K-quants) give values of std d * q_std.
  const std::uint16_t q8_d = fp32_to_fp16(stddev / kInt8Std);
  const std::uint16_t q4_d = fp32_to_fp16(stddev / kNibbleStd);
  const std::uint16_t q4_m = fp32_to_fp16(-7.5f * stddev / kNibbleStd);
  const std::uint16_t k4_d = fp32_to_fp16(stddev / (kNibbleStd * kKQuantSubScale));
  const std::uint16_t k4_dmin = fp32_to_fp16(7.5f * stddev / (kNibbleStd * kKQuantSubScale));
  const std::uint16_t k6_d = fp32_to_fp16(stddev / (kSixBitStd * kKQuantSubScale));
  for (std::int64_t b = 0; b < blocks; ++b) {
    std::uint8_t* block = out + b * layout.block_bytes;
    const std::uint16_t sign = signs.next();
    switch (dtype) {
      case DType::kQ8_0:  // d, int8 q[32]: q * d
        put_u16(block, q8_d ^ sign);
        put_random(rng, block + 2, 32);
        break;
      case DType::kQ4_0:  // d, nibbles[16]: (q - 8) * d
        put_u16(block, q4_d ^ sign);
        put_random(rng, block + 2, 16);
        break;
      case DType::kQ4_1:  // d, m, nibbles[16]: q * d + m, centred by m = -7.5 d
        put_u16(block, q4_d ^ sign);
        put_u16(block + 2, q4_m ^ sign);
        put_random(rng, block + 4, 16);
        break;
      case DType::kQ4_G128:  // d, m, nibbles[64]: as Q4_1
        put_u16(block, q4_d ^ sign);
        put_u16(block + 2, q4_m ^ sign);
        put_random(rng, block + 4, 64);
        break;
      case DType::kQ4_K:  // d, dmin, 12 bytes of 6-bit scales/mins, nibbles[128]
        // Every sub-block scale and min is 32 (0b100000): bytes 0..7 hold the low six
        // bits of the first four and the top two bits of the last four (0xA0), bytes
        // 8..11 the last four's low nibbles (0). Value: d * 32 * q - dmin * 32,
        // centred by dmin = 7.5 d.
        put_u16(block, k4_d ^ sign);
        put_u16(block + 2, k4_dmin ^ sign);
        std::memset(block + 4, 0xA0, 8);
        std::memset(block + 12, 0x00, 4);
        put_random(rng, block + 16, 128);
        break;
      default:  // kQ6_K: ql[128], qh[64], int8 scales[16], d: d * scale * (q - 32)
        put_random(rng, block, 192);
        std::memset(block + 192, kKQuantSubScale, 16);
        put_u16(block + 208, k6_d ^ sign);
        break;
    }
  }
}

// Random F8_R codes: a random sign and one of the 32 magnitudes 0.5 .. 7.5 (exponents
// 6..9), so that no value is NaN and a row's values are not dominated by a few large
// ones; their RMS, under which a row scale gives the values a chosen spread.
std::uint8_t fp8_code(std::uint8_t random) {
  return static_cast<std::uint8_t>((random & 0x80u) | (0x30u + (random & 0x1Fu)));
}
float fp8_code_rms() {
  double sum = 0;
  for (int r = 0; r < 32; ++r) {
    const double v = fp8_e4m3_to_fp32(fp8_code(static_cast<std::uint8_t>(r)));
    sum += v * v;
  }
  return static_cast<float>(std::sqrt(sum / 32));
}

// Uniform random bytes (Q8_R's int8 values: -128..127) or F8_R codes.
void fill_row_scaled(DType dtype, SplitMix64& rng, std::int64_t n, std::uint8_t* out) {
  for (std::int64_t first = 0; first < n; first += 8) {
    std::uint8_t bytes[8];
    const std::uint64_t word = rng.next();
    std::memcpy(bytes, &word, sizeof(word));
    for (std::int64_t i = 0; i < std::min<std::int64_t>(8, n - first); ++i) {
      out[first + i] = dtype == DType::kF8_R ? fp8_code(bytes[i]) : bytes[i];
    }
  }
}

}  // namespace

std::uint64_t mix64(std::uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

void fill_random_values(DType dtype, float stddev, std::uint64_t seed, std::int64_t elements,
                        std::uint8_t* out) {
  SplitMix64 rng(seed);
  const DTypeLayout layout = dtype_layout(dtype);
  if (dtype_is_row_scaled(dtype)) return fill_row_scaled(dtype, rng, elements, out);
  if (layout.block_elements == 1) return fill_plain(dtype, stddev, rng, elements, out);
  if (dtype == DType::kS24_F16) return fill_sparse24(stddev, rng, elements / kS24Block, out);
  fill_quantized(dtype, stddev, rng, elements / layout.block_elements, out);
}

}  // namespace conveyor

namespace conveyor {

void fill_random_row_scales(DType dtype, float stddev, std::uint64_t seed, std::int64_t rows,
                            std::uint8_t* out) {
  SplitMix64 rng(seed);
  if (dtype == DType::kQ8_R) {
    // Q8_R's levels lean half a step below zero: a random sign per row, as per block
    // for Q8_0 (see fill_quantized).
    SignBits signs(rng);
    const std::uint16_t d = fp32_to_fp16(stddev / kInt8Std);
    for (std::int64_t r = 0; r < rows; ++r)
      put_u16(out + 2 * r, d ^ signs.next());
  } else if (dtype == DType::kF8_R) {
    const float s = stddev / fp8_code_rms();
    for (std::int64_t r = 0; r < rows; ++r)
      std::memcpy(out + 4 * r, &s, sizeof(s));  // little-endian hosts, as everywhere here
  }
}

}  // namespace conveyor
