// BF16 and F16 checkpoints run through the same f32 engine: a model stored in half
// precision gives exactly the logits of the same (rounded) values stored as F32.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstring>

#include "common/hf/safetensors_file.h"
#include "tests/hf/safetensors_builder.h"
#include "tests/model/model_fixture.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

// f32 -> bf16 bits, round to nearest even (the weights are finite).
std::uint16_t to_bf16(float x) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  return static_cast<std::uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}
float from_bf16(std::uint16_t h) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(h) << 16);
}

// f32 -> f16 bits for values in f16's normal range, round to nearest even; values
// below it flush to zero, which the fixtures' weights (|x| > 1e-4 or 0) never need.
std::uint16_t to_f16(float x) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  const std::uint32_t sign = (bits >> 16) & 0x8000u;
  const int exponent = static_cast<int>((bits >> 23) & 0xff) - 127 + 15;
  if (exponent <= 0) return static_cast<std::uint16_t>(sign);
  std::uint32_t mantissa = bits & 0x7fffffu;
  std::uint32_t half = (static_cast<std::uint32_t>(exponent) << 10) | (mantissa >> 13);
  const std::uint32_t rest = mantissa & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;
  return static_cast<std::uint16_t>(sign | half);
}
float from_f16(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu;
  const std::uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) return std::bit_cast<float>(sign);  // zero (no subnormals produced)
  return std::bit_cast<float>(sign | ((exponent - 15 + 127) << 23) | (mantissa << 13));
}

// Writes `model` twice: its weights rounded to `dtype` and stored so, and the same
// rounded values stored as F32.
void write_rounded_copies(const std::string& model, const std::string& dtype,
                          const std::filesystem::path& half_dir,
                          const std::filesystem::path& f32_dir) {
  const auto source = SafetensorsFile::open(hf_tiny_dir(model) + "/model.safetensors").value();
  SafetensorsBuilder half;
  SafetensorsBuilder rounded;
  for (const SafetensorsEntry& e : source.entries()) {
    REQUIRE(e.dtype == DType::kF32);
    const std::size_t n = e.bytes.size() / sizeof(float);
    std::vector<float> values(n);
    std::memcpy(values.data(), e.bytes.data(), e.bytes.size());
    std::vector<std::uint8_t> half_bytes(n * 2);
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint16_t h = dtype == "BF16" ? to_bf16(values[i]) : to_f16(values[i]);
      std::memcpy(half_bytes.data() + 2 * i, &h, 2);
      values[i] = dtype == "BF16" ? from_bf16(h) : from_f16(h);
    }
    half.add(e.name, dtype, e.shape, half_bytes);
    rounded.add_f32(e.name, e.shape, values);
  }
  for (const auto& dir : {half_dir, f32_dir}) {
    std::filesystem::copy_file(hf_tiny_dir(model) + "/config.json", dir / "config.json");
  }
  half.write(half_dir / "model.safetensors");
  rounded.write(f32_dir / "model.safetensors");
}

}  // namespace

TEST_CASE("BF16 and F16 checkpoints give the logits of their values in F32") {
  for (const std::string dtype : {"BF16", "F16"}) {
    CAPTURE(dtype);
    TempDir half_dir;
    TempDir f32_dir;
    write_rounded_copies("qwen2-tiny", dtype, half_dir.path(), f32_dir.path());
    LoadedModel half = load_model(half_dir.path().string());
    LoadedModel f32 = load_model(f32_dir.path().string());
    const auto cases = load_reference("qwen2-tiny");
    const std::vector<std::int32_t>& ids = cases[1].input_ids;
    const auto run = [&ids](LoadedModel& m) {
      const std::int64_t id = 0;
      REQUIRE(m.blocks->reserve(id, static_cast<std::int64_t>(ids.size())));
      SequenceStep step;
      step.tokens = ids;
      step.block_table = m.blocks->block_table(id);
      step.logits = LogitsWanted::kAll;
      return m.model->forward(std::span<const SequenceStep>(&step, 1)).logits;
    };
    const std::vector<float> a = run(half);
    const std::vector<float> b = run(f32);
    REQUIRE(a.size() == b.size());
    CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
    // Rounding the weights moves the logits away from transformers' f32 ones, but
    // not far: the half-precision values really were used, and used correctly.
    const std::size_t vocab = cases[1].logits.front().size();
    float worst = 0;
    for (std::size_t p = 0; p < cases[1].logits.size(); ++p) {
      worst = std::max(worst, max_abs_error(std::span<const float>(a).subspan(p * vocab, vocab),
                                            cases[1].logits[p]));
    }
    MESSAGE(dtype << ": max abs logit change from rounding the weights: " << worst);
    CHECK(worst > 0.0f);
    CHECK(worst < (dtype == "BF16" ? 0.25f : 0.02f));
  }
}
