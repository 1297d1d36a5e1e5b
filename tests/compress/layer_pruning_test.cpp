// `--prune layers:N` on a random model with one block made to do nothing (its o_proj and
// down_proj zeroed, so that its output is its input): the similarities single it out,
// layers:1 removes exactly it, the directory has one block fewer, named contiguously, and
// loads and generates; with mixed too; and what is refused, saying why.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>

#include "common/conveyor_model/model_reader.h"
#include "common/model_tensors.h"
#include "compress/compress_model.h"
#include "compress/compress_plan.h"
#include "compress/f32_layer.h"
#include "compress/layer_pruning.h"
#include "compress/mixed_precision.h"
#include "tests/cli/conveyor_process.h"
#include "tests/compress/compress_test_util.h"
#include "tests/temp_dir.h"

using namespace conveyor;
using namespace conveyor::testing;
using namespace conveyor::compress;

namespace {

constexpr std::int64_t kIdle = 1;

std::unique_ptr<ModelSource> model_with_an_idle_block() {
  const ModelShape shape{"layers-test", 64, 4, 4, 2, 128, 256, true, 10000};
  return std::make_unique<EditedSource>(
      random_model(shape, DType::kF32, 5), [](const std::string& name, std::vector<float>& v) {
        if (name == layer_tensor_name(kIdle, "attn_output.weight") ||
            name == layer_tensor_name(kIdle, "ffn_down.weight")) {
          std::fill(v.begin(), v.end(), 0.0f);
        }
      });
}

std::vector<std::int32_t> calibration_ids() {
  std::vector<std::int32_t> ids;
  for (std::int32_t i = 0; i < 160; ++i)
    ids.push_back((i * 37 + 11) % 256);
  return ids;
}

CompressOptions layers_options(Method method, std::int64_t n) {
  CompressOptions options;
  options.method = method;
  options.prune = parse_prune_spec("layers:" + std::to_string(n));
  options.threads = 2;
  return options;
}

}  // namespace

TEST_CASE("block similarity singles out the block whose output is its input") {
  const auto source = model_with_an_idle_block();
  const std::vector<double> s = block_similarity(*source, calibration_ids(), 2);
  REQUIRE(s.size() == 4);
  CHECK(s[kIdle] == doctest::Approx(1.0).epsilon(1e-6));
  for (std::size_t l = 0; l < s.size(); ++l)
    if (l != kIdle) CHECK(s[l] < s[kIdle]);
  CHECK(blocks_to_remove(s, 1) == std::vector<std::int64_t>{kIdle});
  // Ties go to the later block; the result is in ascending order.
  CHECK(blocks_to_remove(std::vector<double>{0.5, 0.9, 0.9, 0.1}, 1) ==
        std::vector<std::int64_t>{2});
  CHECK(blocks_to_remove(std::vector<double>{0.8, 0.9, 0.2, 0.1}, 2) ==
        std::vector<std::int64_t>{0, 1});
  CHECK_THROWS_WITH_AS(blocks_to_remove(s, 4), doctest::Contains("between 1 and 3"), Error);
  CHECK_THROWS_AS(blocks_to_remove(s, 0), Error);

  // Without the idle block the engine computes what it did with it; without another, not.
  const std::vector<std::int32_t> prompt = {1, 17, 42, 200, 3, 99};
  const std::vector<float> original = engine_logits(*source, prompt);
  const std::vector<std::int64_t> idle = {kIdle};
  const std::vector<std::int64_t> other = {kIdle + 1};
  CHECK(max_abs_difference(engine_logits(WithoutBlocks(*source, idle), prompt), original) <
        1e-4f * max_abs(original));
  CHECK(max_abs_difference(engine_logits(WithoutBlocks(*source, other), prompt), original) >
        0.05f * max_abs(original));
}

TEST_CASE("layers:1 removes exactly the idle block; the rest load renumbered and generate") {
  const TempDir dir;
  const auto source = model_with_an_idle_block();
  const std::vector<std::int32_t> calib = calibration_ids();
  const std::vector<std::int32_t> prompt = {1, 17, 42, 200, 3, 99};
  const std::vector<float> original = engine_logits(*source, prompt);
  for (const Method method : {Method::kInt8, Method::kInt4, Method::kFp8}) {
    CAPTURE(method_name(method));
    const std::string out = (dir.path() / std::string(method_name(method))).string();
    std::vector<std::int64_t> layers_seen;
    const CompressResult result =
        compress_model(*source, out, layers_options(method, 1), calib, {},
                       [&](const LayerReport& r) { layers_seen.push_back(r.layer); });
    CHECK(layers_seen == std::vector<std::int64_t>{0, 1, 2});
    CHECK(result.layer_pruning.at("removed_blocks") == std::vector<std::int64_t>{kIdle});
    CHECK(result.layer_pruning.at("block_similarity").size() == 4);

    const auto loaded = ConveyorModelSource::open(out).value();
    CHECK_NOTHROW(check_tensor_shapes(*loaded));
    CHECK(loaded->spec().num_layers == 3);
    const nlohmann::json& producer = loaded->manifest().producer;
    CHECK(producer.at("options").at("prune") == "layers:1");
    CHECK(producer.at("layer_pruning").at("removed_blocks") == std::vector<std::int64_t>{kIdle});
    // Block l of the result is block l (l < 1) or l + 1 of the source, in contiguous names.
    std::int64_t highest = -1;
    for (const TensorRef& t : loaded->tensors())
      highest = std::max(highest, block_of_tensor(t.name));
    CHECK(highest == 2);
    for (const std::int64_t l : {0, 1, 2}) {
      const std::int64_t from = l < kIdle ? l : l + 1;
      for (const char* suffix : {"attn_norm.weight", "ffn_norm.weight"}) {
        // int4's activation-aware scales fold into the norms: those are no longer as stored.
        if (method == Method::kInt4) continue;
        const TensorRef& got = loaded->require(layer_tensor_name(l, suffix));
        const TensorRef& want = source->require(layer_tensor_name(from, suffix));
        CHECK(std::equal(got.bytes.begin(), got.bytes.end(), want.bytes.begin(), want.bytes.end()));
      }
      CHECK(loaded->manifest().find(layer_tensor_name(l, "ffn_up.weight"))->notes.at("method") ==
            method_name(method));
    }
    CHECK(loaded->find(layer_tensor_name(3, "attn_norm.weight")) == nullptr);

    // The idle block did nothing: the model without it says what the source says, up to
    // quantisation (int4's on random weights, which have no structure, the coarsest).
    const std::vector<float> logits = engine_logits(*loaded, prompt);
    CHECK(max_abs_difference(logits, original) <
          (method == Method::kInt4 ? 0.6f : 0.25f) * max_abs(original));

    check_generates_ids(out);
  }
}

TEST_CASE("layers:N with mixed precision measures and sizes the blocks kept") {
  const TempDir dir;
  const auto source = model_with_an_idle_block();
  const std::string out = (dir.path() / "mixed").string();
  MixedTarget target;
  target.kl = 1.0;
  const MixedResult r = compress_mixed(*source, out, layers_options(Method::kMixed, 2), target,
                                       calibration_ids(), {});
  CHECK(r.sensitivity.size() == 2);
  CHECK(r.methods.size() == 2);
  const auto removed =
      r.written.layer_pruning.at("removed_blocks").get<std::vector<std::int64_t>>();
  REQUIRE(removed.size() == 2);
  CHECK(std::find(removed.begin(), removed.end(), kIdle) != removed.end());
  const auto loaded = ConveyorModelSource::open(out).value();
  CHECK(loaded->spec().num_layers == 2);
  CHECK_NOTHROW(check_tensor_shapes(*loaded));
  CHECK(std::isfinite(engine_logits(*loaded, std::vector<std::int32_t>{1, 2, 3})[0]));
}

TEST_CASE("layers:N is refused without calibration, out of range, or with another mode") {
  const TempDir dir;
  const auto source = model_with_an_idle_block();
  const std::string out = (dir.path() / "out").string();
  CHECK_THROWS_WITH_AS(compress_model(*source, out, layers_options(Method::kInt8, 1), {}),
                       doctest::Contains("--calib"), Error);
  for (const std::int64_t n : {4, 7}) {
    CHECK_THROWS_WITH_AS(
        compress_model(*source, out, layers_options(Method::kInt8, n), calibration_ids()),
        doctest::Contains("between 1 and 3"), Error);
  }
  for (const char* text : {"layers:0", "layers:-1", "layers:", "layers:2x"})
    CHECK_THROWS_WITH_AS(parse_prune_spec(text), doctest::Contains("layers:N"), Error);
  for (const char* text : {"layers:1,2:4", "layers:1+wanda:0.3"})
    CHECK_THROWS_WITH_AS(parse_prune_spec(text), doctest::Contains("one pruning mode"), Error);
  CHECK(parse_prune_spec("layers:3").to_string() == "layers:3");
}
