// One block's compression: activation-aware scales change the weights but not what the
// block computes (the scales fold into the norms and up's rows), they never raise the
// layer's output error over plain int4, and pruning leaves exactly the sparsity asked
// for, which int8 and fp8 keep through quantisation.
#include <doctest/doctest.h>

#include <cmath>

#include "common/dequantize.h"
#include "common/status.h"
#include "compress/layer_compressor.h"
#include "compress/reference_forward.h"
#include "tests/compress/compress_test_util.h"

using namespace conveyor;
using namespace conveyor::testing;
using namespace conveyor::compress;

namespace {

// A block whose norms give a few input channels large activations, as trained models
// have, so that activation-aware scales have something to find.
struct Calibrated {
  std::unique_ptr<ModelSource> source;
  F32Layer layer;
  std::vector<float> hidden_in;   // the block's input
  std::vector<float> hidden_out;  // its output
  LinearInputs inputs;
  std::int64_t tokens = 0;
};

Calibrated calibrate(ThreadPool& pool, const ModelShape& shape) {
  Calibrated c;
  c.source = random_model(shape, DType::kF32, 5);
  const ModelSpec& spec = c.source->spec();
  c.layer = load_f32_layer(*c.source, 0);
  for (std::size_t j = 0; j < c.layer.attn_norm.size(); j += 13) {
    c.layer.attn_norm[j] = 12.0f;
    c.layer.ffn_norm[j] = 9.0f;
  }
  std::vector<std::int32_t> tokens;
  for (std::int32_t i = 0; i < 96; ++i)
    tokens.push_back((i * 37 + 11) % static_cast<std::int32_t>(spec.vocab_size));
  c.tokens = static_cast<std::int64_t>(tokens.size());
  const ReferenceForward forward(spec, pool, {64, 32});
  c.hidden_in = forward.embed(c.source->require("token_embd.weight"), tokens);
  c.hidden_out = c.hidden_in;
  forward.layer(c.layer, c.hidden_out, &c.inputs);
  return c;
}

std::int64_t zeros(std::span<const float> v) {
  std::int64_t n = 0;
  for (float x : v)
    n += x == 0.0f ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("AWQ rescaling leaves the block's function unchanged and its error no worse") {
  ThreadPool pool(2);
  for (const ModelShape& shape : {wide_shape(), tiny_shape()}) {  // q4_g128, then q4_1
    CAPTURE(shape.name);
    Calibrated c = calibrate(pool, shape);
    const ModelSpec& spec = c.source->spec();
    CompressOptions options;
    options.method = Method::kInt4;
    F32Layer scaled = c.layer;
    const CompressedLayer out = compress_layer(scaled, &c.inputs, c.tokens, spec, options, pool);
    REQUIRE(out.linears.size() == 7);
    CHECK(out.linears[0].tensor.dtype ==
          (spec.hidden_size % 128 == 0 ? DType::kQ4_G128 : DType::kQ4_1));
    REQUIRE(!out.attn_norm.empty());
    REQUIRE(!out.ffn_norm.empty());
    CHECK(out.attn_norm != c.layer.attn_norm);
    for (const char* group : {"awq_qkv", "awq_gate_up", "awq_down"}) {
      CAPTURE(std::string(group));
      const auto& awq = out.summary.at(group);
      CHECK(awq.at("output_mse").get<double>() <= awq.at("plain_output_mse").get<double>());
    }
    // Outlier channels make the search scale: at least one group picks alpha > 0.
    CHECK(out.summary.at("awq_qkv").at("alpha").get<double>() +
              out.summary.at("awq_gate_up").at("alpha").get<double>() +
              out.summary.at("awq_down").at("alpha").get<double>() >
          0);
    // The rescaled f32 block (before quantisation) computes what the original did.
    const ReferenceForward forward(spec, pool, {64, 32});
    std::vector<float> hidden = c.hidden_in;
    forward.layer(scaled, hidden, nullptr);
    CHECK(max_abs_difference(hidden, c.hidden_out) < 1e-4f * std::max(1.0f, max_abs(c.hidden_out)));
  }
}

TEST_CASE("without calibration or with --no-awq, int4 is plain and the norms stay") {
  ThreadPool pool(2);
  Calibrated c = calibrate(pool, wide_shape());
  CompressOptions options;
  options.method = Method::kInt4;
  F32Layer w = c.layer;
  CompressedLayer out = compress_layer(w, nullptr, 0, c.source->spec(), options, pool);
  CHECK(out.attn_norm.empty());
  CHECK(!out.summary.contains("awq_qkv"));
  options.awq = false;
  out = compress_layer(w, &c.inputs, c.tokens, c.source->spec(), options, pool);
  CHECK(out.ffn_norm.empty());
  CHECK(w.q == c.layer.q);
}

TEST_CASE("pruning leaves exactly the sparsity asked for; int8 and fp8 keep the zeros") {
  ThreadPool pool(2);
  Calibrated c = calibrate(pool, wide_shape());
  const ModelSpec& spec = c.source->spec();
  for (const auto& [method, prune] :
       std::vector<std::pair<Method, std::string>>{{Method::kInt8, "magnitude:0.3"},
                                                   {Method::kFp8, "wanda:0.5"},
                                                   {Method::kInt8, "2:4"},
                                                   {Method::kInt4, "magnitude:0.25"}}) {
    CAPTURE(prune);
    CompressOptions options;
    options.method = method;
    options.prune = parse_prune_spec(prune);
    F32Layer w = c.layer;
    const CompressedLayer out = compress_layer(w, &c.inputs, c.tokens, spec, options, pool);
    const std::vector<float>* weights[] = {&w.q, &w.k, &w.v, &w.o, &w.gate, &w.up, &w.down};
    for (std::size_t i = 0; i < out.linears.size(); ++i) {
      const CompressedLinear& l = out.linears[i];
      CAPTURE(l.name);
      const std::vector<float>& f = *weights[i];
      const std::int64_t n = l.tensor.shape[0];
      const std::int64_t k = l.tensor.shape[1];
      if (options.prune.mode == PruneMode::kTwoFour) {
        for (std::size_t g = 0; g < f.size(); g += 4)
          CHECK(zeros(std::span(f).subspan(g, 4)) == 2);
      } else if (options.prune.mode == PruneMode::kWanda) {
        for (std::int64_t r = 0; r < n; ++r) {
          CHECK(zeros(std::span(f).subspan(static_cast<std::size_t>(r * k),
                                           static_cast<std::size_t>(k))) ==
                std::llround(options.prune.sparsity * static_cast<double>(k)));
        }
      } else {
        CHECK(zeros(f) == std::llround(options.prune.sparsity * static_cast<double>(n * k)));
      }
      CHECK(l.notes.at("pruning").at("sparsity").get<double>() ==
            doctest::Approx(static_cast<double>(zeros(f)) / static_cast<double>(f.size())));
      if (method == Method::kInt4) continue;  // int4's asymmetric grid moves zeros a little
      const std::vector<float> stored = dequantize_tensor(l.tensor.view(l.name));
      for (std::size_t j = 0; j < f.size(); ++j) {
        if (f[j] == 0.0f) REQUIRE(stored[j] == 0.0f);
      }
    }
  }
}

TEST_CASE("Wanda without calibration is refused") {
  ThreadPool pool(1);
  Calibrated c = calibrate(pool, tiny_shape());
  CompressOptions options;
  options.prune = parse_prune_spec("wanda:0.3");
  CHECK_THROWS_AS(compress_layer(c.layer, nullptr, 0, c.source->spec(), options, pool), Error);
}

TEST_CASE("prune specs and formats") {
  CHECK(parse_prune_spec("2:4").mode == PruneMode::kTwoFour);
  CHECK(parse_prune_spec("magnitude:0.3").sparsity == doctest::Approx(0.3));
  CHECK(parse_prune_spec("wanda:0").mode == PruneMode::kWanda);
  CHECK(parse_prune_spec("layers:2").layers == 2);
  for (const char* bad : {"magnitude", "magnitude:1", "magnitude:-0.1", "wanda:x", "3:4",
                          "magnitude:0.3x", "layers:0"}) {
    CAPTURE(std::string(bad));
    CHECK_THROWS_AS(parse_prune_spec(bad), Error);
  }
  CompressOptions int4;
  int4.method = Method::kInt4;
  CHECK(linear_format(int4, 1536).dtype == DType::kQ4_G128);
  CHECK(linear_format(int4, 576).dtype == DType::kQ4_1);
  CHECK(!linear_format(int4, 576).reason.empty());
  CHECK(linear_format(int4, 40).dtype == DType::kQ8_R);
  int4.group = 32;
  CHECK(linear_format(int4, 1536).dtype == DType::kQ4_1);
  CHECK(linear_format(int4, 1536).reason.empty());
  int4.group = 64;
  CHECK_THROWS_AS(check_options(int4), Error);
}
