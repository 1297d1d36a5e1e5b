// Sharded checkpoints: model.safetensors.index.json plus shards, compared with the
// single-file load, and the index errors that must be refused.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "common/hf/hf_model.h"
#include "common/hf/safetensors_checkpoint.h"
#include "common/hf/safetensors_file.h"
#include "common/hf/safetensors_index.h"
#include "tests/hf/safetensors_builder.h"
#include "tests/hf/test_files.h"

using namespace conveyor;
using namespace conveyor::testing;
namespace fs = std::filesystem;

namespace {

// Splits the fixture's tensors into two shards in `dir` (alternating, so both shards
// hold some of every layer), copies its config, and returns the weight map.
nlohmann::json write_two_shards(std::string_view fixture, const TempDir& dir,
                                bool write_index = true) {
  auto single = SafetensorsFile::open((hf_fixture(fixture) / "model.safetensors").string());
  REQUIRE(single.ok());
  SafetensorsBuilder shards[2];
  const std::string names[2] = {"model-00001-of-00002.safetensors",
                                "model-00002-of-00002.safetensors"};
  nlohmann::json weight_map = nlohmann::json::object();
  std::size_t i = 0;
  for (const auto& e : single->entries()) {
    shards[i % 2].add(e.name, e.dtype_name, e.shape, e.bytes);
    weight_map[e.name] = names[i % 2];
    ++i;
  }
  shards[0].metadata("format", "pt").write(dir.path() / names[0]);
  shards[1].metadata("format", "pt").write(dir.path() / names[1]);
  fs::copy_file(hf_fixture(fixture) / "config.json", dir.path() / "config.json");
  if (write_index) {
    const nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}};
    write_text(dir.path() / "model.safetensors.index.json", index.dump(2));
  }
  return weight_map;
}

void write_index(const TempDir& dir, const nlohmann::json& weight_map) {
  write_text(dir.path() / "model.safetensors.index.json",
             nlohmann::json{{"weight_map", weight_map}}.dump());
}

void check_same_tensors(const ModelSource& a, const ModelSource& b) {
  REQUIRE(a.tensors().size() == b.tensors().size());
  for (std::size_t i = 0; i < a.tensors().size(); ++i) {
    const TensorRef& x = a.tensors()[i];
    const TensorRef& y = b.tensors()[i];
    CAPTURE(x.name);
    CHECK(x.name == y.name);
    CHECK(x.dtype == y.dtype);
    CHECK(x.shape == y.shape);
    REQUIRE(x.bytes.size() == y.bytes.size());
    CHECK(std::equal(x.bytes.begin(), x.bytes.end(), y.bytes.begin()));
    CHECK(x.bytes.data() != y.bytes.data());  // really read from different files
  }
}

void check_error(const Status& status, ErrorCode code, std::string_view words) {
  INFO(status.to_string());
  CHECK(status.code() == code);
  CHECK(status.message().find(words) != std::string::npos);
}

}  // namespace

TEST_CASE("shards: an indexed two-shard checkpoint loads byte-identical to the single file") {
  for (const char* fixture : {"llama-tiny", "qwen2-tiny"}) {
    CAPTURE(fixture);
    TempDir dir;
    write_two_shards(fixture, dir);
    auto sharded = open_hf_model(dir.path().string());
    INFO(sharded.status().to_string());
    REQUIRE(sharded.ok());
    auto single = open_hf_model(hf_fixture(fixture).string());
    REQUIRE(single.ok());
    CHECK((*sharded)->format() == "safetensors (2 shards)");
    CHECK((*single)->format() == "safetensors");
    check_same_tensors(**single, **sharded);
  }
}

TEST_CASE("shards: the index file itself can be the path") {
  TempDir dir;
  write_two_shards("llama-tiny", dir);
  auto model = open_hf_model(dir.file("model.safetensors.index.json"));
  INFO(model.status().to_string());
  REQUIRE(model.ok());
  CHECK((*model)->tensors().size() == 30);
}

TEST_CASE("shards: *.safetensors without an index load too") {
  TempDir dir;
  write_two_shards("llama-tiny", dir, /*write_index=*/false);
  auto sharded = open_hf_model(dir.path().string());
  INFO(sharded.status().to_string());
  REQUIRE(sharded.ok());
  auto single = open_hf_model(hf_fixture("llama-tiny").string());
  REQUIRE(single.ok());
  check_same_tensors(**single, **sharded);
}

TEST_CASE("shards: each shard is mapped once") {
  TempDir dir;
  write_two_shards("llama-tiny", dir);
  auto checkpoint = SafetensorsCheckpoint::open_index(dir.file("model.safetensors.index.json"));
  REQUIRE(checkpoint.ok());
  CHECK(checkpoint->files().size() == 2);
  CHECK(checkpoint->entries().size() == 30);
  CHECK(checkpoint->find("model.norm.weight") != nullptr);
}

TEST_CASE("shards: shard names that leave the model directory are refused") {
  for (const char* name : {"../x.safetensors", "/etc/passwd", "sub/../../x.safetensors", "..",
                           "C:\\x.safetensors", ""}) {
    CAPTURE(name);
    const nlohmann::json index = {{"weight_map", {{"model.norm.weight", name}}}};
    try {
      (void)parse_safetensors_index(index.dump(), "index.json");
      FAIL("accepted shard name");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::kMalformed);
    }
  }
  TempDir dir;
  nlohmann::json weight_map = write_two_shards("llama-tiny", dir);
  weight_map["model.norm.weight"] = "../model-00001-of-00002.safetensors";
  write_index(dir, weight_map);
  auto model = open_hf_model(dir.path().string());
  REQUIRE_FALSE(model.ok());
  check_error(model.status(), ErrorCode::kMalformed, "not a plain file name");
}

TEST_CASE("shards: an index that disagrees with its shards is refused") {
  TempDir dir;
  nlohmann::json weight_map = write_two_shards("llama-tiny", dir);
  SUBCASE("a listed tensor missing from its shard") {
    weight_map["model.layers.9.mlp.up_proj.weight"] = "model-00001-of-00002.safetensors";
    write_index(dir, weight_map);
    auto model = open_hf_model(dir.path().string());
    REQUIRE_FALSE(model.ok());
    check_error(model.status(), ErrorCode::kMalformed, "which does not contain it");
  }
  SUBCASE("a tensor listed under the wrong shard") {
    const std::string name = "model.norm.weight";
    weight_map[name] = weight_map[name] == "model-00001-of-00002.safetensors"
                           ? "model-00002-of-00002.safetensors"
                           : "model-00001-of-00002.safetensors";
    write_index(dir, weight_map);
    auto model = open_hf_model(dir.path().string());
    REQUIRE_FALSE(model.ok());
    check_error(model.status(), ErrorCode::kMalformed, name);
  }
  SUBCASE("a tensor stored in two shards") {
    SafetensorsBuilder()
        .add_f32("model.norm.weight", {64}, std::vector<float>(64, 1.0f))
        .write(dir.path() / "extra.safetensors");
    weight_map["extra"] = "extra.safetensors";
    write_index(dir, weight_map);
    auto model = open_hf_model(dir.path().string());
    REQUIRE_FALSE(model.ok());
    check_error(model.status(), ErrorCode::kMalformed, "stored in both");
  }
  SUBCASE("a shard that does not exist") {
    weight_map["model.norm.weight"] = "model-00003-of-00002.safetensors";
    write_index(dir, weight_map);
    auto model = open_hf_model(dir.path().string());
    REQUIRE_FALSE(model.ok());
    CHECK(model.status().code() == ErrorCode::kNotFound);
  }
  SUBCASE("an index without a weight map") {
    write_text(dir.path() / "model.safetensors.index.json", R"({"metadata": {}})");
    auto model = open_hf_model(dir.path().string());
    REQUIRE_FALSE(model.ok());
    check_error(model.status(), ErrorCode::kMalformed, "weight_map");
  }
  SUBCASE("a weight map entry that is not a string") {
    weight_map["model.norm.weight"] = 1;
    write_index(dir, weight_map);
    auto model = open_hf_model(dir.path().string());
    REQUIRE_FALSE(model.ok());
    check_error(model.status(), ErrorCode::kMalformed, "not a string");
  }
}
