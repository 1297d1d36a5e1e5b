// compress_model() end to end on random models: every method (and pruning mode) writes
// a directory that open_model_source() loads with the dtypes and shapes its scheme
// says, the tensors it keeps bit for bit, and logits that stay close to the source's;
// the engine greedily generates from it through `conveyor generate`.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>

#include "common/conveyor_model/model_reader.h"
#include "common/loader/open_model.h"
#include "common/model_tensors.h"
#include "compress/compress_model.h"
#include "tests/cli/conveyor_process.h"
#include "tests/compress/compress_test_util.h"
#include "tests/temp_dir.h"
#include "tests/tensor_compare.h"

using namespace conveyor;
using namespace conveyor::testing;
using namespace conveyor::compress;

namespace {

struct Variant {
  std::string name;
  Method method;
  std::string prune = "none";
  bool calibrated = false;
};

const Variant kVariants[] = {
    {"int8", Method::kInt8},
    {"int4", Method::kInt4},
    {"int4-awq", Method::kInt4, "none", true},
    {"fp8", Method::kFp8},
    {"int8-magnitude", Method::kInt8, "magnitude:0.3"},
    {"int4-wanda", Method::kInt4, "wanda:0.3", true},
    {"fp8-2:4", Method::kFp8, "2:4", true},
    {"f16", Method::kF16},
    {"f16-2:4", Method::kF16, "2:4"},  // stored 2:4-sparse (s24_f16)
};

std::vector<std::int32_t> calibration_ids(std::int64_t vocab) {
  std::vector<std::int32_t> ids;
  for (std::int32_t i = 0; i < 300; ++i)  // longer than the context: two sequences
    ids.push_back((i * 53 + 7) % static_cast<std::int32_t>(vocab));
  return ids;
}

}  // namespace

TEST_CASE("every method writes a directory that loads as its scheme says and runs") {
  const TempDir dir;
  const std::vector<std::int32_t> prompt = {1, 17, 42, 200, 3, 99};
  for (const ModelShape& shape : {wide_shape(), tiny_shape()}) {
    const auto source = random_model(shape, DType::kBF16);
    const std::vector<float> original = engine_logits(*source, prompt);
    const std::vector<std::int32_t> calib = calibration_ids(shape.vocab);
    for (const Variant& v : kVariants) {
      CAPTURE(shape.name);
      CAPTURE(v.name);
      CompressOptions options;
      options.method = v.method;
      options.prune = parse_prune_spec(v.prune);
      options.threads = 2;
      const std::string out = (dir.path() / (shape.name + "-" + v.name)).string();
      std::vector<std::int64_t> layers_seen;
      const CompressResult result = compress_model(
          *source, out, options,
          v.calibrated ? std::span<const std::int32_t>(calib) : std::span<const std::int32_t>(),
          {{"test", true}}, [&](const LayerReport& r) { layers_seen.push_back(r.layer); });
      CHECK(layers_seen == std::vector<std::int64_t>{0, 1});
      CHECK(result.bytes == std::filesystem::file_size(out + "/model.safetensors") +
                                std::filesystem::file_size(out + "/conveyor-model.json"));

      const auto loaded = ConveyorModelSource::open(out).value();
      CHECK_NOTHROW(check_tensor_shapes(*loaded));
      CHECK(loaded->manifest().producer.at("test") == true);
      CHECK(loaded->manifest().producer.at("options").at("method") == method_name(v.method));
      REQUIRE(loaded->tensors().size() == source->tensors().size());
      for (const TensorRef& want : source->tensors()) {
        CAPTURE(want.name);
        const TensorRef* got = loaded->find(want.name);
        REQUIRE(got != nullptr);
        const TensorScheme* scheme = loaded->manifest().find(want.name);
        REQUIRE(scheme != nullptr);
        CHECK(got->shape == want.shape);
        CHECK(got->dtype == scheme->dtype);
        if (scheme->role == "linear") {
          CHECK(got->dtype == linear_format(options, want.shape[1]).dtype);
          CHECK(scheme->notes.at("method") == method_name(v.method));
          CHECK(scheme->notes.contains("pruning") == (v.prune != "none"));
        } else if (scheme->notes.contains("awq_folded")) {
          CHECK(got->dtype == DType::kF32);
          CHECK(v.calibrated);
        } else {
          CHECK(got->dtype == want.dtype);  // kept as stored
          CHECK(same_bytes(*got, want));
        }
      }
      if (v.name == "f16-2:4") {
        // Rows that are whole blocks of 16 keep only their kept values and positions.
        const TensorRef* q = loaded->find("blk.0.attn_q.weight");
        REQUIRE(q != nullptr);
        CHECK(q->dtype == (q->shape[1] % 16 == 0 ? DType::kS24_F16 : DType::kF16));
      }
      if (v.calibrated && v.method == Method::kInt4) {
        CHECK(loaded->manifest().find("blk.0.attn_norm.weight")->notes.contains("awq_folded"));
        CHECK(loaded->manifest().find("blk.1.ffn_down.weight")->notes.contains("awq"));
      }

      const std::vector<float> logits = engine_logits(*loaded, prompt);
      for (float x : logits)
        REQUIRE(std::isfinite(x));
      const double r = correlation(logits, original);
      CAPTURE(r);
      // Pruning 30% (2:4: 50%) of random weights, which have no small ones to spare,
      // changes the model; quantisation alone hardly does.
      CHECK(r > (v.prune == "none" ? 0.95 : v.prune == "2:4" ? 0.3 : 0.7));
    }
  }
}

TEST_CASE("conveyor generate answers greedily from compressed directories") {
  const TempDir dir;
  const auto source = random_model(tiny_shape(), DType::kF16);
  for (const Variant& v : kVariants) {
    if (v.calibrated) continue;
    CAPTURE(v.name);
    CompressOptions options;
    options.method = v.method;
    options.prune = parse_prune_spec(v.prune);
    options.threads = 2;
    const std::string out = (dir.path() / v.name).string();
    compress_model(*source, out, options, {});
    check_generates_ids(out);
  }
}
