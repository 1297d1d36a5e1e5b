// The 2:4 sparse format (kS24_F16, common/sparse24.h) and its compressor
// (common/quant/sparse24.h): block layout, exact round trips of pruned f16 weights,
// and the weights it refuses.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "common/dequantize.h"
#include "common/dtype.h"
#include "common/half.h"
#include "common/quant/prune_mask.h"
#include "common/quant/quantized_tensor.h"
#include "common/quant/sparse24.h"
#include "common/sparse24.h"
#include "common/status.h"
#include "tests/quant/quant_test_util.h"

using namespace conveyor;
using namespace conveyor::quant;
using conveyor::testing::random_rows;

namespace {

// W made 2:4 by magnitude, its values rounded to f16 so that the format holds them
// exactly.
std::vector<float> pruned_f16_weight(std::int64_t n, std::int64_t k, std::uint32_t seed) {
  std::vector<float> w = random_rows(n, k, seed);
  apply_prune_mask(w, two_four_prune_mask(w, n, k));
  for (float& v : w)
    v = fp16_to_fp32(fp32_to_fp16(v));
  return w;
}

std::string refusal(std::span<const float> w, std::int64_t n, std::int64_t k) {
  try {
    quantize_sparse24(w, n, k);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("s24_f16: 18 bytes per 16 values, a name, no row scales") {
  CHECK(dtype_bytes(DType::kS24_F16, 16) == 18u);
  CHECK(dtype_bytes(DType::kS24_F16, 576) == 648u);
  CHECK_FALSE(dtype_bytes(DType::kS24_F16, 8).has_value());
  CHECK(dtype_name(DType::kS24_F16) == "s24_f16");
  CHECK(dtype_from_name("s24_f16") == DType::kS24_F16);
  CHECK(dtype_is_quantized(DType::kS24_F16));
  CHECK(dtype_row_scale_bytes(DType::kS24_F16) == 0);
}

TEST_CASE("an s24_f16 block puts its kept values at their positions, zeros elsewhere") {
  // Groups keep (0, 1), (1, 3), (0, 3), (2, 3); the kept values are 1..8.
  std::vector<std::uint8_t> block(18);
  for (int i = 0; i < 8; ++i) {
    const std::uint16_t h = fp32_to_fp16(static_cast<float>(i + 1));
    block[static_cast<std::size_t>(2 * i)] = static_cast<std::uint8_t>(h & 0xFF);
    block[static_cast<std::size_t>(2 * i + 1)] = static_cast<std::uint8_t>(h >> 8);
  }
  const auto meta = static_cast<std::uint16_t>(s24_group_meta(0, 1, 0) | s24_group_meta(1, 3, 1) |
                                               s24_group_meta(0, 3, 2) | s24_group_meta(2, 3, 3));
  CHECK(meta == 0xECD4);  // group 0 in the low bits, p0 below p1 in each nibble
  block[16] = static_cast<std::uint8_t>(meta & 0xFF);
  block[17] = static_cast<std::uint8_t>(meta >> 8);
  CHECK(s24_meta_valid(meta));
  std::vector<float> out(16);
  dequantize_row(DType::kS24_F16, block.data(), out.data(), 16);
  CHECK(out == std::vector<float>{1, 2, 0, 0, 0, 3, 0, 4, 5, 0, 0, 6, 0, 0, 7, 8});
  CHECK_THROWS_AS(dequantize_row(DType::kS24_F16, block.data(), out.data(), 8), Error);

  // Positions that are not ascending (or repeat) make a block malformed.
  CHECK_FALSE(s24_meta_valid(static_cast<std::uint16_t>(meta & 0xFFF0)));  // group 0: (0, 0)
  CHECK_FALSE(s24_meta_valid(0x1 << 4));                                   // group 1: (1, 0)
  std::vector<std::uint8_t> blocks(3 * 18);
  for (int b = 0; b < 3; ++b)
    std::memcpy(blocks.data() + 18 * b, block.data(), 18);
  CHECK_FALSE(s24_first_bad_block(blocks.data(), 3).has_value());
  blocks[2 * 18 + 17] = 0x0E;  // block 2, groups 2 and 3: (2, 3), (0, 0)
  CHECK(s24_first_bad_block(blocks.data(), 3) == 2);
}

TEST_CASE("2:4 compression round-trips pruned f16 weights exactly") {
  for (const auto& [n, k] : {std::pair<std::int64_t, std::int64_t>{1, 16}, {7, 48}, {33, 576}}) {
    CAPTURE(n);
    CAPTURE(k);
    const std::vector<float> w = pruned_f16_weight(n, k, static_cast<std::uint32_t>(n * k));
    const QuantizedTensor q = quantize_sparse24(w, n, k);
    CHECK(q.dtype == DType::kS24_F16);
    CHECK(q.shape == std::vector<std::int64_t>{n, k});
    CHECK(q.bytes.size() == static_cast<std::size_t>(n * k / 16 * 18));
    CHECK(q.scales.empty());
    CHECK(same_bits(dequantize_tensor(q.view("w")), w));
    // quantize_weight dispatches to it.
    CHECK(quantize_weight(DType::kS24_F16, w, n, k).bytes == q.bytes);
  }
}

TEST_CASE("2:4 compression: groups with fewer than two nonzeros keep their first zeros") {
  // Group 0 none, group 1 one at 3, group 2 a -0 and one at 2, group 3 two.
  const std::vector<float> w = {0, 0, 0, 0, 0, 0, 0, 0.5f, -0.0f, 0, -2, 0, 0, 3, 0, 4};
  const QuantizedTensor q = quantize_sparse24(w, 1, 16);
  const std::uint16_t meta = s24_block_meta(q.bytes.data());
  CHECK(s24_position(meta, 0, 0) == 0);
  CHECK(s24_position(meta, 0, 1) == 1);
  CHECK(s24_position(meta, 1, 0) == 0);
  CHECK(s24_position(meta, 1, 1) == 3);
  CHECK(s24_position(meta, 2, 0) == 0);
  CHECK(s24_position(meta, 2, 1) == 2);
  CHECK(s24_position(meta, 3, 0) == 1);
  CHECK(s24_position(meta, 3, 1) == 3);
  const std::vector<float> back = dequantize_tensor(q.view("w"));
  CHECK(same_bits(back, w));  // the -0 was kept (as a zero of its group), so it stays -0
}

TEST_CASE("2:4 compression rounds values to f16") {
  const std::vector<float> w = {0.1f, 0, 0, 1e-9f, 0, 0, 70000.0f / 3, 0, 0,
                                0,    0, 0, 0,     0, 0, -1.0f / 3};
  const std::vector<float> back = dequantize_tensor(quantize_sparse24(w, 1, 16).view("w"));
  for (std::size_t i = 0; i < w.size(); ++i) {
    CAPTURE(i);
    CHECK(back[i] == fp16_to_fp32(fp32_to_fp16(w[i])));
  }
  CHECK(back[3] == 0.0f);  // below f16's smallest subnormal
}

TEST_CASE("2:4 compression refuses weights that are not 2:4 or do not fit the format") {
  std::vector<float> w = pruned_f16_weight(3, 32, 5);
  // Row 1, group 5 (k 20..23): three nonzeros.
  for (int i = 20; i < 23; ++i)
    w[static_cast<std::size_t>(32 + i)] = 1.0f;
  const std::string why = refusal(w, 3, 32);
  CHECK(why.find("row 1, group 5") != std::string::npos);
  CHECK(why.find("3 nonzeros") != std::string::npos);

  const std::vector<float> dense = random_rows(2, 16, 1);
  CHECK(refusal(dense, 2, 16).find("row 0, group 0") != std::string::npos);
  // k not a multiple of 16, sizes that disagree, non-finite values, f16 overflow.
  const std::vector<float> short_rows = pruned_f16_weight(2, 8, 2);
  CHECK(refusal(short_rows, 2, 8).find("blocks of 16") != std::string::npos);
  const std::vector<float> rows20(40, 0.0f);
  CHECK_FALSE(refusal(rows20, 2, 20).empty());
  CHECK_FALSE(refusal(w, 2, 32).empty());
  std::vector<float> bad = pruned_f16_weight(1, 16, 3);
  bad[1] = NAN;
  bad[0] = bad[2] = bad[3] = 0;
  CHECK_FALSE(refusal(bad, 1, 16).empty());
  bad[1] = 1e6f;
  CHECK(refusal(bad, 1, 16).find("f16's range") != std::string::npos);
}
