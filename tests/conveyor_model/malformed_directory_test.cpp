// Damaged Conveyor model directories are refused with the error code the reader
// promises (common/conveyor_model/model_reader.h), a message that names the directory,
// and never a crash.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "common/conveyor_model/model_format.h"
#include "common/conveyor_model/safetensors_writer.h"
#include "common/conveyor_model/save_model.h"
#include "common/loader/open_model.h"
#include "common/synthetic/random_model_source.h"
#include "tests/temp_dir.h"

using namespace conveyor;
using conveyor::testing::TempDir;
namespace fs = std::filesystem;

namespace {

// A valid directory of the tiny random shape in q8_r (values and row scales).
std::string make_model(const TempDir& dir) {
  RandomModelOptions options;
  options.dtype = DType::kQ8_R;
  options.max_positions = 64;
  options.threads = 1;
  const std::string path = (dir.path() / "model").string();
  save_conveyor_model(*make_random_model(*model_shape("tiny"), options), path);
  return path;
}

nlohmann::json read_manifest(const std::string& dir) {
  std::ifstream in(dir + "/" + std::string(kConveyorModelManifest));
  return nlohmann::json::parse(in);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

void write_manifest(const std::string& dir, const nlohmann::json& j) {
  write_text(dir + "/" + std::string(kConveyorModelManifest), j.dump());
}

nlohmann::json& tensor(nlohmann::json& manifest, const std::string& name) {
  for (auto& t : manifest.at("tensors")) {
    if (t.at("name") == name) return t;
  }
  FAIL("no tensor " << name);
  throw;
}

// The status of opening the directory after `damage` was done to its manifest.
Status open_after(const std::function<void(nlohmann::json&)>& damage) {
  const TempDir dir;
  const std::string path = make_model(dir);
  nlohmann::json manifest = read_manifest(path);
  damage(manifest);
  write_manifest(path, manifest);
  const auto opened = open_model_source(path);
  if (!opened.ok()) CHECK(opened.status().message().find(path) == 0);
  return opened.ok() ? Status() : opened.status();
}

}  // namespace

TEST_CASE("an intact directory opens") {
  CHECK(open_after([](nlohmann::json&) {}).ok());
}

TEST_CASE("damage to conveyor-model.json is refused with its code") {
  struct Case {
    const char* what;
    std::function<void(nlohmann::json&)> damage;
    ErrorCode code;
  };
  const Case cases[] = {
      {"another format", [](auto& j) { j["format"] = "gguf"; }, ErrorCode::kMalformed},
      {"a newer version", [](auto& j) { j["version"] = 2; }, ErrorCode::kUnsupported},
      {"no spec", [](auto& j) { j.erase("spec"); }, ErrorCode::kMalformed},
      {"an invalid spec", [](auto& j) { j["spec"]["num_heads"] = 0; }, ErrorCode::kMalformed},
      {"a spec that disagrees with the tensors", [](auto& j) { j["spec"]["hidden_size"] = 128; },
       ErrorCode::kMalformed},
      {"a dtype this build does not know",
       [](auto& j) { tensor(j, "blk.0.attn_q.weight")["dtype"] = "q3_k"; },
       ErrorCode::kUnsupported},
      {"a dtype the stored entries do not match",
       [](auto& j) {
         auto& t = tensor(j, "blk.0.attn_q.weight");
         t["dtype"] = "f32";
         t["group_size"] = 0;
         t["scales"] = nullptr;
       },
       ErrorCode::kMalformed},
      {"a group size the dtype does not have",
       [](auto& j) { tensor(j, "blk.0.attn_q.weight")["group_size"] = 32; }, ErrorCode::kMalformed},
      {"a row-scaled tensor without scales",
       [](auto& j) { tensor(j, "blk.0.attn_q.weight")["scales"] = nullptr; },
       ErrorCode::kMalformed},
      {"a shape other than stored",
       [](auto& j) {
         tensor(j, "blk.0.attn_q.weight")["shape"] = {32, 64};
       },
       ErrorCode::kMalformed},
      {"a negative dimension",
       [](auto& j) {
         tensor(j, "blk.0.attn_q.weight")["shape"] = {-64, 64};
       },
       ErrorCode::kMalformed},
      {"values in an entry the file lacks",
       [](auto& j) { tensor(j, "blk.0.attn_q.weight")["values"]["tensor"] = "nowhere"; },
       ErrorCode::kMalformed},
      {"values in another file",
       [](auto& j) { tensor(j, "blk.0.attn_q.weight")["values"]["file"] = "other.safetensors"; },
       ErrorCode::kMalformed},
      {"one entry claimed by two tensors",
       [](auto& j) {
         tensor(j, "blk.0.attn_k.weight")["values"]["tensor"] = "blk.0.attn_v.weight";
       },
       ErrorCode::kMalformed},
      {"a tensor named twice", [](auto& j) { j["tensors"].push_back(j["tensors"][0]); },
       ErrorCode::kMalformed},
      {"a required tensor missing (its entries then unclaimed)",
       [](auto& j) {
         auto& list = j["tensors"];
         for (std::size_t i = 0; i < list.size(); ++i) {
           if (list[i]["name"] == "blk.1.ffn_down.weight") list.erase(i);
         }
       },
       ErrorCode::kMalformed},
      {"a tokenizer larger than the vocabulary",
       [](auto& j) {
         nlohmann::json tok = {{"kind", "byte_level_bpe"},
                               {"pre", "default"},
                               {"tokens", std::vector<std::string>(300, "a")},
                               {"scores", nlohmann::json::array()},
                               {"token_types", nlohmann::json::array()},
                               {"merges", nlohmann::json::array()},
                               {"bos_id", -1},
                               {"eos_id", -1},
                               {"unk_id", -1},
                               {"pad_id", -1},
                               {"eot_ids", nlohmann::json::array()},
                               {"add_bos", false},
                               {"add_eos", false},
                               {"chat_template", ""},
                               {"added_tokens", nlohmann::json::array()},
                               {"pre_regexes", nlohmann::json::array()},
                               {"ignore_merges", false},
                               {"normalize_nfc", false},
                               {"add_space_prefix", true},
                               {"space_prefix_rule", "every_run"},
                               {"byte_fallback", true}};
         j["tokenizer"] = tok;
       },
       ErrorCode::kMalformed},
      {"a tokenizer with a field missing",
       [](auto& j) {
         j["tokenizer"] = {{"kind", "byte_level_bpe"}};
       },
       ErrorCode::kMalformed},
      {"not an object", [](auto& j) { j = nlohmann::json::array(); }, ErrorCode::kMalformed},
  };
  for (const Case& c : cases) {
    const std::string what = c.what;
    CAPTURE(what);
    CHECK(open_after(c.damage).code() == c.code);
  }
}

TEST_CASE("damaged or missing files are refused with their codes") {
  SUBCASE("conveyor-model.json that is not JSON") {
    const TempDir dir;
    const std::string path = make_model(dir);
    write_text(path + "/conveyor-model.json", "{\"format\": \"conveyor-model\", ");
    CHECK(open_model_source(path).status().code() == ErrorCode::kMalformed);
  }
  SUBCASE("no model.safetensors") {
    const TempDir dir;
    const std::string path = make_model(dir);
    fs::remove(path + "/model.safetensors");
    CHECK(open_model_source(path).status().code() == ErrorCode::kNotFound);
  }
  SUBCASE("model.safetensors cut short") {
    const TempDir dir;
    const std::string path = make_model(dir);
    fs::resize_file(path + "/model.safetensors", fs::file_size(path + "/model.safetensors") - 100);
    const ErrorCode code = open_model_source(path).status().code();
    CHECK((code == ErrorCode::kOutOfRange || code == ErrorCode::kMalformed));
  }
  SUBCASE("model.safetensors holding an entry no tensor claims") {
    const TempDir dir;
    const std::string path = make_model(dir);
    // Rewrite the weights with one more entry: the manifest still describes the rest.
    const auto source = open_model_source(path).value();
    std::vector<SafetensorsTensor> tensors;
    for (const TensorRef& t : source->tensors()) {
      std::vector<std::int64_t> shape = t.shape;
      tensors.push_back({t.name, t.dtype == DType::kQ8_R ? "I8" : "F32", shape, t.bytes});
      if (!t.scales.empty()) {
        tensors.push_back({t.name + ".scales", "F16", {t.scale_rows()}, t.scales});
      }
    }
    const std::vector<std::uint8_t> extra(16, 0);
    tensors.push_back({"stowaway", "U8", {16}, extra});
    const std::string tmp = (dir.path() / "weights.tmp").string();
    write_safetensors(tmp, tensors);
    fs::rename(tmp, path + "/model.safetensors");
    const Status s = open_model_source(path).status();
    CHECK(s.code() == ErrorCode::kMalformed);
    CHECK(s.message().find("stowaway") != std::string::npos);
  }
  SUBCASE("a directory whose writing never finished is no Conveyor model") {
    const TempDir dir;
    const std::string path = make_model(dir);
    fs::remove(path + "/conveyor-model.json");
    // Without its manifest it is tried as a Hugging Face directory, which it is not.
    CHECK(!open_model_source(path).ok());
  }
}
