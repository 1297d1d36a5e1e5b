// `--method mixed` on random models with one block made more sensitive (every 32nd
// input column of its linears much larger: wide rows and int4 groups, so coarse steps
// for every other weight; scaling a whole block up would not do, as the residual it
// dominates grows with its error): the
// measured sensitivities single it out, it keeps the most bits, and a size target is met
// by the largest choice of the greedy sequence that fits.
#include <doctest/doctest.h>

#include <filesystem>

#include "common/conveyor_model/model_reader.h"
#include "compress/compress_plan.h"
#include "compress/mixed_precision.h"
#include "tests/compress/compress_test_util.h"
#include "tests/temp_dir.h"

using namespace conveyor;
using namespace conveyor::testing;
using namespace conveyor::compress;

namespace {

constexpr std::int64_t kSensitive = 2;

std::unique_ptr<ModelSource> model_with_a_sensitive_block(bool edited = true) {
  const ModelShape shape{"mixed-test", 64, 4, 4, 2, 128, 256, true, 10000};
  return std::make_unique<EditedSource>(
      random_model(shape, DType::kF32, 3),
      [edited](const std::string& name, std::vector<float>& v) {
        if (!edited || block_of_tensor(name) != kSensitive || name.ends_with("norm.weight")) return;
        // Every row is a multiple of 32 long: columns 0, 32, ... of every row.
        for (std::size_t i = 0; i < v.size(); i += 32)
          v[i] *= 10.0f;
      });
}

std::vector<std::int32_t> calibration_ids() {
  std::vector<std::int32_t> ids;
  for (std::int32_t i = 0; i < 160; ++i)
    ids.push_back((i * 37 + 11) % 256);
  return ids;
}

int rank(Method m) {
  return m == Method::kF16 ? 2 : m == Method::kInt8 ? 1 : 0;
}

CompressOptions mixed_options() {
  CompressOptions options;
  options.method = Method::kMixed;
  options.threads = 2;
  return options;
}

}  // namespace

TEST_CASE("block sensitivity singles out the block whose errors weigh most") {
  const auto source = model_with_a_sensitive_block();
  const std::vector<std::int32_t> calib = calibration_ids();
  const std::vector<BlockSensitivity> s =
      measure_block_sensitivity(*source, mixed_options(), calib);
  const std::vector<BlockSensitivity> plain =
      measure_block_sensitivity(*model_with_a_sensitive_block(false), mixed_options(), calib);
  REQUIRE(s.size() == 4);
  for (const BlockSensitivity& b : s) {
    CAPTURE(b.layer);
    CHECK(b.kl_int8 > 0);
    CHECK(b.kl_int4 > b.kl_int8);  // fewer bits, more error
  }
  CHECK(s[kSensitive].kl_int8 > 10 * plain[kSensitive].kl_int8);
  CHECK(s[kSensitive].kl_int4 > 10 * plain[kSensitive].kl_int4);
}

TEST_CASE("greedy choices: sizes fall step by step; a KL bound upgrades the sensitive first") {
  const auto source = model_with_a_sensitive_block();
  std::uint64_t rest = 0;
  const std::vector<BlockBytes> bytes = block_bytes(*source, mixed_options(), true, rest);
  REQUIRE(bytes.size() == 4);
  CHECK(bytes[0].f16 > bytes[0].int8);
  CHECK(bytes[0].int8 > bytes[0].int4);
  std::vector<BlockSensitivity> s(4);
  for (std::int64_t b = 0; b < 4; ++b)
    s[static_cast<std::size_t>(b)] = {b, 0.001 * static_cast<double>(b + 1),
                                      0.01 * static_cast<double>(b + 1)};
  const std::vector<std::vector<Method>> steps = downgrade_steps(s, bytes);
  REQUIRE(steps.size() == 9);
  CHECK(steps.front() == std::vector<Method>(4, Method::kF16));
  CHECK(steps.back() == std::vector<Method>(4, Method::kInt4));
  // Block 3 is the most sensitive: it leaves f16 last.
  for (const std::vector<Method>& m : steps)
    for (std::size_t b = 0; b < 4; ++b)
      CHECK(rank(m[3]) >= rank(m[b]));

  const double all_int4 = estimated_kl(s, std::vector<Method>(4, Method::kInt4));
  const std::vector<Method> one = upgrade_to_kl(s, bytes, all_int4 - 0.001);
  CHECK(one == std::vector<Method>{Method::kInt4, Method::kInt4, Method::kInt4, Method::kInt8});
  CHECK(upgrade_to_kl(s, bytes, all_int4) == std::vector<Method>(4, Method::kInt4));
  CHECK(upgrade_to_kl(s, bytes, 0) == std::vector<Method>(4, Method::kF16));
  const std::vector<Method> some = upgrade_to_kl(s, bytes, 0.02);
  CHECK(estimated_kl(s, some) <= 0.02);
}

TEST_CASE("a mixed run meets its size target with the largest choice that fits, and loads") {
  const TempDir dir;
  const auto source = model_with_a_sensitive_block();
  const std::vector<std::int32_t> calib = calibration_ids();
  const CompressOptions options = mixed_options();
  const std::vector<BlockSensitivity> s = measure_block_sensitivity(*source, options, calib);
  std::uint64_t rest = 0;
  const std::vector<BlockBytes> bytes = block_bytes(*source, options, true, rest);
  const std::vector<std::vector<Method>> steps = downgrade_steps(s, bytes);

  // The target halfway between two consecutive steps' sizes on disk.
  auto written = [&](std::size_t step) {
    CompressOptions o = options;
    o.layer_methods = steps[step];
    return compress_model(*source, (dir.path() / ("step" + std::to_string(step))).string(), o,
                          calib)
        .bytes;
  };
  for (const std::size_t k : {std::size_t{1}, std::size_t{4}, std::size_t{7}}) {
    CAPTURE(k);
    const std::uint64_t larger = written(k - 1);
    const std::uint64_t smaller = written(k);
    REQUIRE(larger > smaller);
    const MixedTarget target{(larger + smaller) / 2, std::nullopt};
    const std::string out = (dir.path() / ("mixed" + std::to_string(k))).string();
    const MixedResult r = compress_mixed(*source, out, options, target, calib);
    CHECK(r.written.bytes <= *target.bytes);
    CHECK(r.written.bytes == std::filesystem::file_size(out + "/model.safetensors") +
                                 std::filesystem::file_size(out + "/conveyor-model.json"));
    CHECK(r.methods == steps[k]);  // one downgrade fewer is steps[k - 1]: over the target
    for (std::size_t a = 0; a < 4; ++a) {
      for (std::size_t b = 0; b < 4; ++b) {
        if (s[a].kl_int8 >= s[b].kl_int8 &&
            s[a].kl_int4 - s[a].kl_int8 >= s[b].kl_int4 - s[b].kl_int8) {
          CHECK(rank(r.methods[a]) >= rank(r.methods[b]));
        }
      }
    }
    CHECK(r.json.at("blocks").size() == 4);
    CHECK(r.json.at("blocks")[kSensitive].at("kl_int4").get<double>() ==
          doctest::Approx(s[kSensitive].kl_int4));

    const auto loaded = ConveyorModelSource::open(out).value();
    CHECK(loaded->manifest().producer.contains("mixed"));
    for (std::size_t b = 0; b < 4; ++b) {
      const DType want = r.methods[b] == Method::kF16    ? DType::kF16
                         : r.methods[b] == Method::kInt8 ? DType::kQ8_R
                                                         : DType::kQ4_1;
      CHECK(loaded->require("blk." + std::to_string(b) + ".ffn_up.weight").dtype == want);
    }
    const std::vector<float> logits = engine_logits(*loaded, std::vector<std::int32_t>{1, 5, 9});
    for (const float x : logits)
      REQUIRE(std::isfinite(x));
  }

  // Below every block in int4: refused, saying so.
  CHECK_THROWS_WITH_AS(compress_mixed(*source, (dir.path() / "tiny").string(), options,
                                      {std::uint64_t{1000}, std::nullopt}, calib),
                       doctest::Contains("int4"), Error);
}

TEST_CASE("a mixed run under a KL bound keeps the estimate within it") {
  const TempDir dir;
  const auto source = model_with_a_sensitive_block();
  const std::vector<std::int32_t> calib = calibration_ids();
  const MixedResult r = compress_mixed(*source, (dir.path() / "kl").string(), mixed_options(),
                                       {std::nullopt, 1e-3}, calib);
  CHECK(r.kl_estimate <= 1e-3);
  CHECK(r.methods[kSensitive] != Method::kInt4);
  CHECK(r.writes == 1);
}
