// A Conveyor model directory written from any source loads back through
// open_model_source() as the same model: spec, tokenizer, and every tensor with its
// dtype, shape, bytes and row scales; and the engine runs it.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>

#include "common/conveyor_model/model_format.h"
#include "common/conveyor_model/model_reader.h"
#include "common/conveyor_model/save_model.h"
#include "common/hf/safetensors_file.h"
#include "common/loader/open_model.h"
#include "common/model_tensors.h"
#include "common/synthetic/random_model_source.h"
#include "tests/conveyor_model/model_source_wrapper.h"
#include "tests/temp_dir.h"

using namespace conveyor;
using conveyor::testing::TempDir;

namespace {

const DType kAllDTypes[] = {DType::kF32,     DType::kF16,  DType::kBF16, DType::kQ8_0,
                            DType::kQ4_0,    DType::kQ4_1, DType::kQ4_K, DType::kQ6_K,
                            DType::kQ4_G128, DType::kQ8_R, DType::kF8_R};

std::unique_ptr<ModelSource> random_model(DType dtype) {
  // Rows of 256, so that every type is stored as asked.
  const ModelShape shape{"dir-test", 256, 2, 4, 2, 512, 512, false, 10000};
  RandomModelOptions options;
  options.dtype = dtype;
  options.seed = 3;
  options.max_positions = 128;
  options.threads = 2;
  return make_random_model(shape, options);
}

bool same_span(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

}  // namespace

TEST_CASE("a source in every dtype saves and loads back bit for bit") {
  for (DType dtype : kAllDTypes) {
    CAPTURE(dtype_name(dtype));
    const TempDir dir;
    const auto source = random_model(dtype);
    const std::string path = (dir.path() / "model").string();
    save_conveyor_model(*source, path);
    const auto loaded = open_model_source(path).value();
    CHECK(loaded->format() == "conveyor-model v1");
    CHECK(loaded->path() == path);
    CHECK(loaded->spec().hidden_size == source->spec().hidden_size);
    REQUIRE(loaded->tensors().size() == source->tensors().size());
    for (std::size_t i = 0; i < source->tensors().size(); ++i) {
      const TensorRef& want = source->tensors()[i];
      const TensorRef& got = loaded->tensors()[i];
      CAPTURE(want.name);
      CHECK(got.name == want.name);
      CHECK(got.dtype == want.dtype);
      CHECK(got.shape == want.shape);
      CHECK(same_span(got.bytes, want.bytes));
      CHECK(same_span(got.scales, want.scales));
    }
    CHECK_NOTHROW(check_tensor_shapes(*loaded));
    CHECK(!loaded->tokenizer().has_value());
    CHECK(loaded->tokenizer_status().code() == ErrorCode::kNotFound);
  }
}

TEST_CASE("the stored form is plain safetensors: blocks as U8, row scales beside the values") {
  const TempDir dir;
  for (DType dtype : {DType::kQ4_G128, DType::kQ8_R, DType::kF8_R, DType::kQ4_K}) {
    CAPTURE(dtype_name(dtype));
    const std::string path = (dir.path() / std::string(dtype_name(dtype))).string();
    save_conveyor_model(*random_model(dtype), path);
    const SafetensorsFile file =
        SafetensorsFile::open(path + "/" + std::string(kConveyorModelWeights)).value();
    const SafetensorsEntry* q = file.find("blk.0.attn_q.weight");
    REQUIRE(q != nullptr);
    const SafetensorsEntry* scales = file.find("blk.0.attn_q.weight.scales");
    switch (dtype) {
      case DType::kQ4_G128:
        CHECK(q->dtype_name == "U8");
        CHECK(q->shape == std::vector<std::int64_t>{256, 2 * 68});
        CHECK(scales == nullptr);
        break;
      case DType::kQ4_K:
        CHECK(q->dtype_name == "U8");
        CHECK(q->shape == std::vector<std::int64_t>{256, 144});
        break;
      case DType::kQ8_R:
        CHECK(q->dtype_name == "I8");
        CHECK(q->shape == std::vector<std::int64_t>{256, 256});
        REQUIRE(scales != nullptr);
        CHECK(scales->dtype_name == "F16");
        CHECK(scales->shape == std::vector<std::int64_t>{256});
        break;
      default:
        CHECK(q->dtype_name == "F8_E4M3");
        REQUIRE(scales != nullptr);
        CHECK(scales->dtype_name == "F32");
        break;
    }
    CHECK(file.find("blk.0.attn_norm.weight")->dtype_name == "F32");
  }
}

TEST_CASE("a source's tokenizer and chat template survive the directory") {
  const TempDir dir;
  TokenizerData tokenizer;
  tokenizer.tokens = {"a", "b", "ab", "<|im_end|>"};
  tokenizer.merges = {"a b"};
  tokenizer.eos_id = 3;
  tokenizer.eot_ids = {3};
  tokenizer.chat_template = "{% for message in messages %}<|im_start|>{% endfor %}";
  tokenizer.added_tokens = {{3, "<|im_end|>", true, false, false, false}};
  const testing::ModelWithTokenizer source(random_model(DType::kBF16), tokenizer);
  const std::string path = (dir.path() / "m").string();
  save_conveyor_model(source, path);
  const auto loaded = open_model_source(path).value();
  REQUIRE(loaded->tokenizer().has_value());
  CHECK(loaded->tokenizer()->tokens == tokenizer.tokens);
  CHECK(loaded->tokenizer()->chat_template == tokenizer.chat_template);
  CHECK(loaded->tokenizer()->added_tokens.size() == 1);
  CHECK(loaded->tokenizer_status().ok());
}

TEST_CASE(
    "the directory's conveyor-model.json opens the model too; a plain HF directory does not "
    "count as one") {
  const TempDir dir;
  const std::string path = (dir.path() / "m").string();
  save_conveyor_model(*random_model(DType::kF16), path);
  CHECK(is_conveyor_model_path(path));
  CHECK(is_conveyor_model_path(path + "/conveyor-model.json"));
  CHECK(open_model_source(path + "/conveyor-model.json").value()->path() == path);
  const std::string hf = std::string(CONVEYOR_FIXTURES_DIR) + "/hf-tiny/llama-tiny";
  CHECK(!is_conveyor_model_path(hf));
  CHECK(open_model_source(hf).value()->format() == "safetensors");
}
