// Named model shapes: each one's spec is a valid model of the published dimensions.
#include <doctest/doctest.h>

#include "common/status.h"
#include "common/synthetic/model_shapes.h"

using namespace conveyor;

TEST_CASE("every named shape gives a valid spec with its published dimensions") {
  struct Want {
    const char* name;
    std::int64_t hidden, layers, heads, kv_heads, ffn, vocab;
    bool tied;
    std::int64_t approx_parameters;
  };
  const Want table[] = {
      {"llama-1b", 2048, 16, 32, 8, 8192, 128256, true, 1'235'814'400},
      {"llama-8b", 4096, 32, 32, 8, 14336, 128256, false, 8'030'261'248},
      {"smollm2-135m", 576, 30, 9, 3, 1536, 49152, true, 134'515'008},
      {"tiny", 64, 2, 4, 2, 128, 256, true, 0},
  };
  CHECK(model_shape_names().size() == std::size(table));
  for (const Want& w : table) {
    CAPTURE(w.name);
    const Expected<ModelShape> shape = model_shape(w.name);
    REQUIRE(shape.ok());
    const ModelSpec spec = spec_for_shape(*shape, 2048);
    CHECK_NOTHROW(validate_model_spec(spec));
    CHECK(spec.architecture == "llama");
    CHECK(spec.name == w.name);
    CHECK(spec.hidden_size == w.hidden);
    CHECK(spec.num_layers == w.layers);
    CHECK(spec.num_heads == w.heads);
    CHECK(spec.num_kv_heads == w.kv_heads);
    CHECK(spec.head_dim * spec.num_heads == w.hidden);
    CHECK(spec.intermediate_size == w.ffn);
    CHECK(spec.vocab_size == w.vocab);
    CHECK(spec.tie_embeddings == w.tied);
    CHECK(spec.max_positions == 2048);
    CHECK(spec.rms_norm_eps == doctest::Approx(1e-5));
    CHECK(spec.eos_token_ids.empty());
    // The published parameter counts (norms included) of the real models.
    if (w.approx_parameters > 0) CHECK(shape->parameters() == w.approx_parameters);
  }
  CHECK(model_shape("llama-8b")->rope_theta == 500000.0);
  CHECK(model_shape("smollm2-135m")->rope_theta == 100000.0);
}

TEST_CASE("an unknown shape is an error that lists the known ones") {
  const Expected<ModelShape> shape = model_shape("llama-70b");
  REQUIRE(!shape.ok());
  CHECK(shape.status().code() == ErrorCode::kNotFound);
  const std::string& message = shape.status().message();
  CHECK(message.find("llama-70b") != std::string::npos);
  for (const std::string& name : model_shape_names()) {
    CHECK(message.find(name) != std::string::npos);
  }
}

TEST_CASE("spec_for_shape refuses dimensions that are not a model") {
  ModelShape shape = *model_shape("tiny");
  shape.heads = 3;  // 64 is not a multiple of 3
  CHECK_THROWS_AS(spec_for_shape(shape, 128), Error);
  shape = *model_shape("tiny");
  shape.kv_heads = 3;  // 4 query heads cannot share 3 KV heads
  CHECK_THROWS_AS(spec_for_shape(shape, 128), Error);
  shape = *model_shape("tiny");
  shape.layers = 0;
  CHECK_THROWS_AS(spec_for_shape(shape, 128), Error);
}
