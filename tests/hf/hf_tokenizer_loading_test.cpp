// open_model_source on Hugging Face directories: the tokenizer.json beside the weights
// is judged as a GGUF file's tokenizer is (common/tokenizer/model_tokenizer.h).
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "common/loader/open_model.h"
#include "tests/hf/test_files.h"

using namespace conveyor;
using namespace conveyor::testing;
namespace fs = std::filesystem;

namespace {

// llama-tiny (vocab_size 320) with `tokenizer_json` beside it, or none when empty.
void write_model(const TempDir& dir, const std::string& tokenizer_json) {
  for (const char* name : {"config.json", "model.safetensors"}) {
    fs::copy_file(hf_fixture("llama-tiny") / name, dir.path() / name);
  }
  if (!tokenizer_json.empty()) write_text(dir.path() / "tokenizer.json", tokenizer_json);
}

// A byte-level BPE tokenizer.json with n tokens.
std::string bpe_json(int n) {
  std::string vocab;
  for (int i = 0; i < n; ++i) {
    vocab += (i > 0 ? ", \"t" : "\"t") + std::to_string(i) + "\": " + std::to_string(i);
  }
  return R"({"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false},
    "model": {"type": "BPE", "vocab": {)" +
         vocab + R"(}, "merges": []}})";
}

}  // namespace

TEST_CASE("hf loader: a tokenizer Conveyor does not implement leaves the model loadable") {
  TempDir dir;
  write_model(dir, R"({"model": {"type": "Unigram", "vocab": [["a", 0.0]]}})");
  auto model = open_model_source(dir.path().string());
  REQUIRE_MESSAGE(model.ok(), model.status().to_string());
  CHECK((*model)->spec().vocab_size == 320);
  CHECK((*model)->find("token_embd.weight") != nullptr);
  CHECK_FALSE((*model)->tokenizer().has_value());
  CHECK((*model)->tokenizer_status().code() == ErrorCode::kUnsupported);
  CHECK((*model)->tokenizer_status().message().find("Unigram") != std::string::npos);
}

TEST_CASE("hf loader: without a tokenizer.json the reason is kNotFound") {
  TempDir dir;
  write_model(dir, "");
  auto model = open_model_source(dir.path().string());
  REQUIRE_MESSAGE(model.ok(), model.status().to_string());
  CHECK_FALSE((*model)->tokenizer().has_value());
  CHECK((*model)->tokenizer_status().code() == ErrorCode::kNotFound);
}

TEST_CASE("hf loader: a supported tokenizer loads; padding rows beyond it are normal") {
  TempDir dir;
  write_model(dir, bpe_json(300));
  auto model = open_model_source(dir.path().string());
  REQUIRE_MESSAGE(model.ok(), model.status().to_string());
  REQUIRE((*model)->tokenizer().has_value());
  CHECK((*model)->tokenizer()->tokens.size() == 300);
  CHECK((*model)->tokenizer_status().ok());
}

TEST_CASE("hf loader: more tokens than embedding rows fail the load") {
  TempDir dir;
  write_model(dir, bpe_json(321));
  auto model = open_model_source(dir.path().string());
  REQUIRE(!model.ok());
  INFO(model.status().to_string());
  CHECK(model.status().code() == ErrorCode::kMalformed);
  CHECK(model.status().message() == dir.file("tokenizer.json").string() +
                                        ": the tokenizer has 321 tokens, more than the model's "
                                        "vocabulary of 320");
}

TEST_CASE("hf loader: a broken tokenizer.json is named once") {
  TempDir dir;
  write_model(dir, R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 5}, "merges": []},
    "pre_tokenizer": {"type": "ByteLevel"}})");
  auto model = open_model_source(dir.path().string());
  REQUIRE(!model.ok());
  const std::string message = model.status().message();
  INFO(message);
  CHECK(model.status().code() == ErrorCode::kMalformed);
  CHECK(message.starts_with(dir.file("tokenizer.json").string() + ": "));
  CHECK(message.find("tokenizer.json", dir.file("tokenizer.json").string().size()) ==
        std::string::npos);
}

TEST_CASE("hf loader: tokenizer.json is parsed with the bounded JSON reader") {
  TempDir dir;
  write_model(dir, std::string(200, '[') + std::string(200, ']'));
  auto model = open_model_source(dir.path().string());
  REQUIRE(!model.ok());
  INFO(model.status().to_string());
  CHECK(model.status().code() == ErrorCode::kMalformed);
  CHECK(model.status().message().find("nests deeper") != std::string::npos);
}
