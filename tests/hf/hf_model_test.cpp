// HfModelSource: the fixtures as ModelSources, the name mapping, tied embeddings,
// files whose tensors contradict their config, and pickle refusal.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "common/hf/hf_model.h"
#include "common/hf/hf_names.h"
#include "common/hf/pickle_refusal.h"
#include "common/hf/safetensors_file.h"
#include "common/model_tensors.h"
#include "tests/hf/safetensors_builder.h"
#include "tests/hf/test_files.h"

using namespace conveyor;
using namespace conveyor::testing;
namespace fs = std::filesystem;

namespace {

std::unique_ptr<ModelSource> open_fixture(std::string_view name) {
  auto model = open_hf_model(hf_fixture(name).string());
  INFO(model.status().to_string());
  REQUIRE(model.ok());
  return std::move(model).value();
}

// A copy of the fixture's config and tensors in `dir`, after `edit` has changed the
// tensor list (add, drop, replace) through the builder it is handed.
template <typename Edit>
void write_edited_copy(std::string_view fixture, const TempDir& dir, Edit edit) {
  auto file = SafetensorsFile::open((hf_fixture(fixture) / "model.safetensors").string());
  REQUIRE(file.ok());
  SafetensorsBuilder builder;
  for (const auto& e : file->entries()) {
    if (edit(e, builder)) builder.add(e.name, e.dtype_name, e.shape, e.bytes);
  }
  builder.write(dir.path() / "model.safetensors");
  fs::copy_file(hf_fixture(fixture) / "config.json", dir.path() / "config.json",
                fs::copy_options::overwrite_existing);
}

Status open_status(const std::string& path) {
  return open_hf_model(path).status();
}

void check_error(const Status& status, ErrorCode code, std::string_view words) {
  INFO(status.to_string());
  CHECK(status.code() == code);
  CHECK(status.message().find(words) != std::string::npos);
}

}  // namespace

TEST_CASE("hf names map to canonical names") {
  CHECK(canonical_name_from_hf("model.embed_tokens.weight") == "token_embd.weight");
  CHECK(canonical_name_from_hf("model.norm.weight") == "output_norm.weight");
  CHECK(canonical_name_from_hf("lm_head.weight") == "output.weight");
  CHECK(canonical_name_from_hf("model.layers.0.input_layernorm.weight") ==
        "blk.0.attn_norm.weight");
  CHECK(canonical_name_from_hf("model.layers.12.self_attn.q_proj.weight") ==
        "blk.12.attn_q.weight");
  CHECK(canonical_name_from_hf("model.layers.3.self_attn.k_proj.bias") == "blk.3.attn_k.bias");
  CHECK(canonical_name_from_hf("model.layers.3.self_attn.v_proj.bias") == "blk.3.attn_v.bias");
  CHECK(canonical_name_from_hf("model.layers.1.self_attn.o_proj.weight") ==
        "blk.1.attn_output.weight");
  CHECK(canonical_name_from_hf("model.layers.1.post_attention_layernorm.weight") ==
        "blk.1.ffn_norm.weight");
  CHECK(canonical_name_from_hf("model.layers.1.mlp.gate_proj.weight") == "blk.1.ffn_gate.weight");
  CHECK(canonical_name_from_hf("model.layers.1.mlp.up_proj.weight") == "blk.1.ffn_up.weight");
  CHECK(canonical_name_from_hf("model.layers.1.mlp.down_proj.weight") == "blk.1.ffn_down.weight");
  CHECK_FALSE(canonical_name_from_hf("model.layers.1.self_attn.o_proj.bias"));
  CHECK_FALSE(canonical_name_from_hf("model.layers.x.mlp.up_proj.weight"));
  CHECK_FALSE(canonical_name_from_hf("model.layers.01.mlp.up_proj.weight"));
  CHECK_FALSE(canonical_name_from_hf("model.layers.99999999999.mlp.up_proj.weight"));
  CHECK_FALSE(canonical_name_from_hf("model.layers..mlp.up_proj.weight"));
  CHECK(is_ignorable_hf_tensor("model.layers.0.self_attn.rotary_emb.inv_freq"));
  CHECK_FALSE(is_ignorable_hf_tensor("model.layers.0.mlp.up_proj.weight"));
}

TEST_CASE("hf model: every fixture opens with canonical tensors in canonical order") {
  struct Case {
    const char* name;
    std::size_t tensors;
    bool has_output;
  };
  for (const Case c : {Case{"llama-tiny", 30, true}, Case{"llama-tiny-tied", 29, false},
                       Case{"llama3-tiny-ropescaling", 29, false}, Case{"qwen2-tiny", 38, false},
                       Case{"mistral-tiny-swa", 30, true}}) {
    CAPTURE(c.name);
    const auto model = open_fixture(c.name);
    CHECK(model->format() == "safetensors");
    CHECK(model->spec().name == c.name);
    CHECK_FALSE(model->tokenizer().has_value());
    const auto& tensors = model->tensors();
    REQUIRE(tensors.size() == c.tensors);
    CHECK(tensors.front().name == "token_embd.weight");
    CHECK(tensors[1].name == "blk.0.attn_norm.weight");
    CHECK((model->find("output.weight") != nullptr) == c.has_output);
    CHECK(tensors.back().name == (c.has_output ? "output.weight" : "output_norm.weight"));
    const auto expected = expected_tensors(model->spec());
    REQUIRE(expected.size() == tensors.size());
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      CHECK(tensors[i].name == expected[i].name);
      CHECK(tensors[i].shape == expected[i].shape);
      CHECK(tensors[i].dtype == DType::kF32);
    }
    CHECK_NOTHROW(check_tensor_shapes(*model));
  }
}

TEST_CASE("hf model: tensors are views of the stored bytes, shapes as stored") {
  const auto model = open_fixture("qwen2-tiny");
  auto file = SafetensorsFile::open((hf_fixture("qwen2-tiny") / "model.safetensors").string());
  REQUIRE(file.ok());
  const TensorRef& down = model->require("blk.2.ffn_down.weight");
  const SafetensorsEntry* stored = file->find("model.layers.2.mlp.down_proj.weight");
  REQUIRE(stored != nullptr);
  CHECK(down.shape == std::vector<std::int64_t>{64, 160});  // [out, in]
  REQUIRE(down.bytes.size() == stored->bytes.size());
  CHECK(std::memcmp(down.bytes.data(), stored->bytes.data(), down.bytes.size()) == 0);
  CHECK(model->require("blk.0.attn_q.bias").shape == std::vector<std::int64_t>{64});
  CHECK(model->require("blk.0.attn_k.bias").shape == std::vector<std::int64_t>{32});
  CHECK_THROWS_AS(model->require("blk.3.ffn_up.weight"), Error);
}

TEST_CASE("hf model: a .safetensors file beside a config.json can be the path") {
  auto model = open_hf_model((hf_fixture("mistral-tiny-swa") / "model.safetensors").string());
  REQUIRE(model.ok());
  CHECK((*model)->spec().sliding_window == 8);
}

TEST_CASE("hf model: tied embeddings never expose a stored lm_head") {
  TempDir dir;
  write_edited_copy("llama-tiny-tied", dir, [](const SafetensorsEntry&, SafetensorsBuilder& b) {
    static bool added = false;
    if (!added) b.add_f32("lm_head.weight", {320, 64}, std::vector<float>(320 * 64, 0.5f));
    added = true;
    return true;
  });
  auto model = open_hf_model(dir.path().string());
  INFO(model.status().to_string());
  REQUIRE(model.ok());
  CHECK((*model)->find("output.weight") == nullptr);
  CHECK((*model)->tensors().size() == 29);
}

TEST_CASE("hf model: files whose tensors contradict the config fail at load") {
  TempDir dir;
  SUBCASE("untied model without lm_head") {
    write_edited_copy("llama-tiny", dir, [](const SafetensorsEntry& e, SafetensorsBuilder&) {
      return e.name != "lm_head.weight";
    });
    check_error(open_status(dir.path().string()), ErrorCode::kNotFound, "output.weight");
  }
  SUBCASE("a missing layer tensor") {
    write_edited_copy("llama-tiny", dir, [](const SafetensorsEntry& e, SafetensorsBuilder&) {
      return e.name != "model.layers.2.mlp.gate_proj.weight";
    });
    check_error(open_status(dir.path().string()), ErrorCode::kNotFound, "blk.2.ffn_gate.weight");
  }
  SUBCASE("a config that lies about a size") {
    write_edited_copy("llama-tiny", dir, [](const auto&, auto&) { return true; });
    auto config = nlohmann::json::parse(read_text(dir.path() / "config.json"));
    config["intermediate_size"] = 128;
    write_text(dir.path() / "config.json", config.dump());
    check_error(open_status(dir.path().string()), ErrorCode::kMalformed, "implies [128, 64]");
  }
  SUBCASE("a transposed weight") {
    write_edited_copy("llama-tiny", dir, [](const SafetensorsEntry& e, SafetensorsBuilder& b) {
      if (e.name != "model.layers.0.mlp.up_proj.weight") return true;
      b.add(e.name, e.dtype_name, {64, 160}, e.bytes);
      return false;
    });
    check_error(open_status(dir.path().string()), ErrorCode::kMalformed, "blk.0.ffn_up.weight");
  }
  SUBCASE("a layer past num_hidden_layers") {
    write_edited_copy("llama-tiny", dir, [](const SafetensorsEntry& e, SafetensorsBuilder& b) {
      if (e.name == "model.norm.weight") {
        b.add("model.layers.3.input_layernorm.weight", e.dtype_name, e.shape, e.bytes);
      }
      return true;
    });
    check_error(open_status(dir.path().string()), ErrorCode::kMalformed, "past the model's 3");
  }
  SUBCASE("q/k/v bias in a model without it") {
    write_edited_copy("llama-tiny", dir, [](const SafetensorsEntry& e, SafetensorsBuilder& b) {
      if (e.name == "model.norm.weight") {
        b.add("model.layers.0.self_attn.q_proj.bias", e.dtype_name, e.shape, e.bytes);
      }
      return true;
    });
    check_error(open_status(dir.path().string()), ErrorCode::kMalformed, "no q/k/v bias");
  }
  SUBCASE("a tensor outside the Llama-family layout") {
    write_edited_copy("llama-tiny", dir, [](const SafetensorsEntry& e, SafetensorsBuilder& b) {
      if (e.name == "model.norm.weight") {
        b.add("model.layers.0.self_attn.o_proj.bias", e.dtype_name, e.shape, e.bytes);
      }
      return true;
    });
    check_error(open_status(dir.path().string()), ErrorCode::kUnsupported, "o_proj.bias");
  }
  SUBCASE("a weight stored as I64 names the tensor and dtype") {
    write_edited_copy("llama-tiny", dir, [](const SafetensorsEntry& e, SafetensorsBuilder& b) {
      if (e.name != "model.norm.weight") return true;
      b.add(e.name, "I64", {32}, e.bytes);
      return false;
    });
    check_error(open_status(dir.path().string()), ErrorCode::kUnsupported,
                "'model.norm.weight' has dtype I64");
  }
}

TEST_CASE("hf model: unused buffers in other dtypes are skipped") {
  TempDir dir;
  write_edited_copy("llama-tiny", dir, [](const SafetensorsEntry& e, SafetensorsBuilder& b) {
    if (e.name == "model.norm.weight") {
      b.add("model.layers.0.self_attn.rotary_emb.inv_freq", "F64", {8},
            std::vector<std::uint8_t>(64, 0));
    }
    return true;
  });
  auto model = open_hf_model(dir.path().string());
  INFO(model.status().to_string());
  REQUIRE(model.ok());
  CHECK((*model)->tensors().size() == 30);
}

TEST_CASE("hf model: side files") {
  TempDir dir;
  write_edited_copy("llama-tiny", dir, [](const auto&, auto&) { return true; });
  write_text(dir.path() / "tokenizer.json", "{}");
  write_text(dir.path() / "generation_config.json", R"({"eos_token_id": [2, 7]})");
  auto model = HfModelSource::open(dir.path().string());
  INFO(model.status().to_string());
  REQUIRE(model.ok());
  CHECK((*model)->tokenizer_json_path() == dir.file("tokenizer.json"));
  CHECK((*model)->tokenizer_config_path().empty());
  CHECK((*model)->spec().eos_token_ids == std::vector<std::int64_t>{2, 7});
  CHECK_FALSE((*model)->tokenizer().has_value());
  TokenizerData data;
  data.tokens = {"a", "b"};
  (*model)->set_tokenizer(data);
  CHECK((*model)->tokenizer()->tokens.size() == 2);
}

TEST_CASE("hf model: directories that are not models") {
  TempDir dir;
  SUBCASE("no weights") {
    fs::copy_file(hf_fixture("llama-tiny") / "config.json", dir.path() / "config.json");
    check_error(open_status(dir.path().string()), ErrorCode::kNotFound, "no model.safetensors");
  }
  SUBCASE("no config.json") {
    fs::copy_file(hf_fixture("llama-tiny") / "model.safetensors", dir.path() / "model.safetensors");
    check_error(open_status(dir.path().string()), ErrorCode::kNotFound, "config.json");
  }
  SUBCASE("missing path") {
    check_error(open_status(dir.file("nothing-here")), ErrorCode::kNotFound, "does not exist");
  }
  SUBCASE("some other file") {
    write_text(dir.path() / "notes.txt", "hello");
    check_error(open_status(dir.file("notes.txt")), ErrorCode::kInvalidArgument, "notes.txt");
  }
}

TEST_CASE("hf model: pickle checkpoints are refused, never read") {
  TempDir dir;
  // A pickle that would run code if unpickled; the loader must not even open it.
  write_text(dir.path() / "pytorch_model.bin",
             "\x80\x04\x95"
             "cos\nsystem\n(S'true'\ntR.");
  fs::copy_file(hf_fixture("llama-tiny") / "config.json", dir.path() / "config.json");

  SUBCASE("a path to a .bin file") {
    const Status s = open_status(dir.file("pytorch_model.bin"));
    check_error(s, ErrorCode::kUnsupported, "arbitrary code");
    CHECK(s.message().find("safetensors") != std::string::npos);
  }
  SUBCASE("a directory with only pytorch_model.bin") {
    const Status s = open_status(dir.path().string());
    check_error(s, ErrorCode::kUnsupported, "arbitrary code");
    CHECK(s.message().find("pytorch_model.bin") != std::string::npos);
  }
  SUBCASE("other pickle extensions, even when absent") {
    for (const char* name : {"model.pt", "model.pth", "model.ckpt", "model.pkl"}) {
      check_error(open_status(dir.file(name)), ErrorCode::kUnsupported, "arbitrary code");
    }
  }
  SUBCASE("safetensors beside a pickle win, and the pickle is ignored") {
    fs::copy_file(hf_fixture("llama-tiny") / "model.safetensors", dir.path() / "model.safetensors");
    CHECK(open_hf_model(dir.path().string()).ok());
  }
  CHECK(is_pickle_checkpoint_name("pytorch_model.bin.index.json"));
  CHECK_FALSE(is_pickle_checkpoint_name("model.safetensors"));
}

TEST_CASE("check_tensor_shapes on hand-made tensor lists") {
  const auto model = open_fixture("llama-tiny-tied");
  std::vector<TensorRef> tensors = model->tensors();
  CHECK_NOTHROW(check_tensor_shapes(model->spec(), tensors, "t"));

  auto expect_code = [&](const std::vector<TensorRef>& list, ErrorCode code) {
    try {
      check_tensor_shapes(model->spec(), list, "t");
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.code() == code);
    }
  };
  SUBCASE("output.weight although tied") {
    TensorRef out = tensors.front();
    out.name = "output.weight";
    tensors.push_back(out);
    expect_code(tensors, ErrorCode::kMalformed);
  }
  SUBCASE("a name twice") {
    tensors.push_back(tensors.front());
    expect_code(tensors, ErrorCode::kMalformed);
  }
  SUBCASE("bytes that disagree with the shape") {
    tensors.front().bytes = tensors.front().bytes.first(8);
    expect_code(tensors, ErrorCode::kMalformed);
  }
  SUBCASE("other names are left alone") {
    TensorRef extra = tensors.front();
    extra.name = "rope_freqs.weight";
    tensors.push_back(extra);
    CHECK_NOTHROW(check_tensor_shapes(model->spec(), tensors, "t"));
  }
}
