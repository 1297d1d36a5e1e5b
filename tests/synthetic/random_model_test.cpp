// Random-weight models: complete, loadable, runnable in every dtype, scaled so the
// logits are usable, and reproducible from their seed.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "common/dequantize.h"
#include "common/model_tensors.h"
#include "common/sparse24.h"
#include "common/status.h"
#include "common/synthetic/random_model_source.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/tensor_compare.h"
#include "worker/llama_model.h"

using namespace conveyor;
using conveyor::testing::correlation;
using conveyor::testing::same_bytes;

namespace {

const DType kAllDTypes[] = {DType::kF32,     DType::kF16,  DType::kBF16, DType::kQ8_0,
                            DType::kQ4_0,    DType::kQ4_1, DType::kQ4_K, DType::kQ6_K,
                            DType::kQ4_G128, DType::kQ8_R, DType::kF8_R, DType::kS24_F16};

// Rows of 256, so the K-quants are stored as asked rather than falling back to Q8_0;
// token_embd (8192 x 256) spans two generation chunks.
ModelShape wide_shape() {
  return {"wide-test", 256, 1, 4, 2, 512, 8192, false, 10000};
}

std::unique_ptr<ModelSource> random_model(const ModelShape& shape, DType dtype,
                                          std::uint64_t seed = 0, int threads = 2) {
  RandomModelOptions options;
  options.dtype = dtype;
  options.seed = seed;
  options.max_positions = 256;
  options.threads = threads;
  return make_random_model(shape, options);
}

// Logits f32 [tokens, vocab] of one prompt through the whole model on the CPU backend.
std::vector<float> forward_logits(const ModelSource& source,
                                  const std::vector<std::int32_t>& tokens) {
  const ModelSpec& spec = source.spec();
  CpuBackendOptions backend_options;
  backend_options.threads = 2;
  CpuBackend backend(backend_options);
  KvCache cache(backend, {spec.num_layers, 4, 16, spec.kv_dim()});
  LlamaModel model(backend, ModelWeights::load(backend, source, LayerRange::all(spec)), cache);
  // Blocks 0..3 in order: the sequence's block table.
  const std::vector<std::int32_t> table = {0, 1, 2, 3};
  REQUIRE(static_cast<std::int64_t>(tokens.size()) <= 4 * 16);
  const SequenceStep step{tokens, 0, table, LogitsWanted::kAll};
  return model.forward(std::span<const SequenceStep>(&step, 1)).logits;
}

// Logits must be finite, vary within a row, and differ between rows.
void check_logits_usable(const std::vector<float>& logits, std::int64_t vocab) {
  const auto rows = static_cast<std::int64_t>(logits.size()) / vocab;
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* row = logits.data() + r * vocab;
    float lo = row[0];
    float hi = row[0];
    for (std::int64_t i = 0; i < vocab; ++i) {
      REQUIRE(std::isfinite(row[i]));
      lo = std::min(lo, row[i]);
      hi = std::max(hi, row[i]);
    }
    CHECK(hi - lo > 0.5f);
    CHECK(hi - lo < 100.0f);
    if (r > 0) CHECK(std::memcmp(row, row - vocab, static_cast<std::size_t>(vocab) * 4) != 0);
  }
}

}  // namespace

TEST_CASE("tiny and a 256-wide shape load and run in every dtype") {
  const std::vector<std::int32_t> prompt{1, 17, 42, 200, 3};
  for (const ModelShape& shape : {*model_shape("tiny"), wide_shape()}) {
    for (DType dtype : kAllDTypes) {
      CAPTURE(shape.name);
      CAPTURE(dtype_name(dtype));
      const auto source = random_model(shape, dtype);
      check_logits_usable(forward_logits(*source, prompt), shape.vocab);
    }
  }
}

TEST_CASE("a deeper stack still gives each token its own logits") {
  // A value bias that all matrices share (the lean of Q4_0's levels, -8..7) grows
  // through the layers into one direction that swamps the tokens' differences.
  const ModelShape deep{"deep-test", 256, 12, 4, 2, 512, 512, false, 10000};
  for (DType dtype : kAllDTypes) {
    CAPTURE(dtype_name(dtype));
    const auto source = random_model(deep, dtype);
    // Separate sequences, so that attention does not mix the two tokens.
    const std::vector<float> a = forward_logits(*source, {7});
    const std::vector<float> b = forward_logits(*source, {300});
    CHECK(std::fabs(correlation(a, b)) < 0.5);
  }
}

TEST_CASE("the source holds exactly the canonical tensors, sized by their dtype") {
  for (DType dtype : kAllDTypes) {
    CAPTURE(dtype_name(dtype));
    const auto source = random_model(wide_shape(), dtype);
    const auto expected = expected_tensors(source->spec());
    REQUIRE(source->tensors().size() == expected.size());
    CHECK_NOTHROW(check_tensor_shapes(*source));
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < expected.size(); ++i) {
      const TensorRef& t = source->tensors()[i];
      CHECK(t.name == expected[i].name);
      CHECK(t.shape == expected[i].shape);
      CHECK(t.dtype == (t.shape.size() == 1 ? DType::kF32 : dtype));
      const auto bytes = dtype_bytes(t.dtype, static_cast<std::uint64_t>(t.elements()));
      REQUIRE(bytes.has_value());
      CHECK(t.bytes.size() == *bytes);
      CHECK(row_scales_match(t));
      total += t.bytes.size() + t.scales.size();
    }
    CHECK(total == random_model_bytes(wide_shape(), dtype));
    CHECK(source->find("output.weight") != nullptr);  // wide-test is untied
  }
  const auto tiny = random_model(*model_shape("tiny"), DType::kQ4_0);
  CHECK(tiny->find("output.weight") == nullptr);
  for (float v : dequantize_tensor(tiny->require("blk.1.ffn_norm.weight")))
    CHECK(v == 1.0f);
}

TEST_CASE("rows that are not whole K-quant blocks fall back to Q8_0, then F16") {
  CHECK(random_tensor_dtype(DType::kQ4_K, {128, 256}) == DType::kQ4_K);
  CHECK(random_tensor_dtype(DType::kQ4_K, {128, 64}) == DType::kQ8_0);
  CHECK(random_tensor_dtype(DType::kQ6_K, {128, 576}) == DType::kQ8_0);
  CHECK(random_tensor_dtype(DType::kQ4_0, {128, 48}) == DType::kF16);
  CHECK(random_tensor_dtype(DType::kBF16, {128, 48}) == DType::kBF16);
  CHECK(random_tensor_dtype(DType::kQ8_0, {64}) == DType::kF32);
  const auto tiny = random_model(*model_shape("tiny"), DType::kQ6_K);
  CHECK(tiny->require("blk.0.attn_q.weight").dtype == DType::kQ8_0);
}

TEST_CASE("S24_F16 matrices are 2:4: two nonzeros in every group of 4, positions valid") {
  CHECK(random_tensor_dtype(DType::kS24_F16, {128, 48}) == DType::kS24_F16);
  CHECK(random_tensor_dtype(DType::kS24_F16, {128, 40}) == DType::kF16);
  const auto source = random_model(*model_shape("tiny"), DType::kS24_F16);
  const TensorRef& t = source->require("token_embd.weight");  // [256, 64]
  REQUIRE(t.dtype == DType::kS24_F16);
  CHECK_FALSE(s24_first_bad_block(t.bytes.data(), t.elements() / kS24Block).has_value());
  const std::vector<float> values = dequantize_tensor(t);
  int pairs[6] = {};  // how often each choice of two positions was made
  for (std::size_t g = 0; g < values.size(); g += 4) {
    int nonzeros = 0;
    int mask = 0;
    for (int i = 0; i < 4; ++i) {
      if (values[g + static_cast<std::size_t>(i)] != 0) {
        ++nonzeros;
        mask |= 1 << i;
      }
    }
    REQUIRE(nonzeros == 2);
    const int index[16] = {-1, -1, -1, 0, -1, 1, 3, -1, -1, 2, 4, -1, 5, -1, -1, -1};
    ++pairs[index[mask]];
  }
  const double expected = static_cast<double>(values.size()) / 4 / 6;
  for (int count : pairs)
    CHECK(count == doctest::Approx(expected).epsilon(0.1));
}

TEST_CASE("matrices have mean 0 and standard deviation 1 / sqrt(in_features)") {
  for (DType dtype : kAllDTypes) {
    CAPTURE(dtype_name(dtype));
    const auto source = random_model(wide_shape(), dtype);
    for (const std::string name : {"token_embd.weight", "blk.0.ffn_down.weight"}) {
      CAPTURE(name);
      const TensorRef& t = source->require(name);
      const std::vector<float> values = dequantize_tensor(t);
      double sum = 0;
      double squares = 0;
      for (float v : values) {
        sum += v;
        squares += static_cast<double>(v) * v;
      }
      const auto n = static_cast<double>(values.size());
      const double mean = sum / n;
      const double stddev = std::sqrt(squares / n - mean * mean);
      const double want = 1.0 / std::sqrt(static_cast<double>(t.shape[1]));
      CHECK(stddev == doctest::Approx(want).epsilon(0.05));
      CHECK(std::fabs(mean) < 0.01 * want);
    }
  }
}

TEST_CASE("F16 and BF16 hold the F32 model's values, rounded") {
  const auto f32 = random_model(wide_shape(), DType::kF32, 7);
  const auto f16 = random_model(wide_shape(), DType::kF16, 7);
  const auto bf16 = random_model(wide_shape(), DType::kBF16, 7);
  const std::vector<float> exact = dequantize_tensor(f32->require("blk.0.attn_k.weight"));
  const std::vector<float> half = dequantize_tensor(f16->require("blk.0.attn_k.weight"));
  const std::vector<float> brain = dequantize_tensor(bf16->require("blk.0.attn_k.weight"));
  for (std::size_t i = 0; i < exact.size(); ++i) {
    // Half an ulp: 2^-11 relative for f16 (plus its subnormal spacing 2^-24), 2^-8 for bf16.
    REQUIRE(std::fabs(half[i] - exact[i]) <= std::fabs(exact[i]) * 0x1p-11f + 0x1p-25f);
    REQUIRE(std::fabs(brain[i] - exact[i]) <= std::fabs(exact[i]) * 0x1p-8f);
  }
}

TEST_CASE("a seed gives the same bytes whatever the thread count; another seed differs") {
  const auto one = random_model(wide_shape(), DType::kQ4_K, 11, 1);
  const auto three = random_model(wide_shape(), DType::kQ4_K, 11, 3);
  const auto other = random_model(wide_shape(), DType::kQ4_K, 12, 3);
  for (std::size_t i = 0; i < one->tensors().size(); ++i) {
    const TensorRef& t = one->tensors()[i];
    CAPTURE(t.name);
    CHECK(same_bytes(t, three->tensors()[i]));
    if (t.shape.size() == 2) CHECK(!same_bytes(t, other->tensors()[i]));
  }
  // Tensors of the same shape are not copies of each other.
  CHECK(!same_bytes(one->require("blk.0.ffn_gate.weight"), one->require("blk.0.ffn_up.weight")));
}

TEST_CASE("no tokenizer; format and path name the shape") {
  const auto source = random_model(*model_shape("tiny"), DType::kBF16);
  CHECK(!source->tokenizer().has_value());
  CHECK(source->tokenizer_status().code() == ErrorCode::kNotFound);
  CHECK(source->format() == "random (tiny, bf16)");
  CHECK(source->path() == "random:tiny");
  CHECK(source->spec().max_positions == 256);
}

TEST_CASE("a shape that is not a model is refused before anything is allocated") {
  ModelShape shape = *model_shape("tiny");
  shape.kv_heads = 3;
  try {
    (void)make_random_model(shape);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kMalformed);
    CHECK(std::string(e.what()).find("random:tiny") != std::string::npos);
  }
}

TEST_CASE("smollm2-135m in Q8_0 builds and runs") {
  const auto source = random_model(*model_shape("smollm2-135m"), DType::kQ8_0);
  CHECK(source->require("blk.29.ffn_down.weight").dtype == DType::kQ8_0);
  check_logits_usable(forward_logits(*source, {5, 900, 31000}), 49152);
}
