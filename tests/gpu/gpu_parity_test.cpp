// The CUDA backend on whole models: the hf-tiny fixtures in fp32 mode against
// transformers' logits and greedy tokens, and SmolLM2 (its Q4_1 weights widened to
// f16 or bf16) against the CPU engine's greedy continuations. Skipped without a GPU; the SmolLM2
// case also without the model installed.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/loader/open_model.h"
#include "common/model_registry.h"
#include "common/tokenizer/tokenizer.h"
#include "coordinator/local_pipeline.h"
#include "coordinator/scheduler_actor.h"
#include "tests/gpu/cuda_twin.h"
#include "tests/gpu/pipeline_tokens.h"
#include "tests/model/model_fixture.h"

using namespace conveyor;
using namespace conveyor::testing;

TEST_CASE("hf-tiny fixtures: fp32 logits and greedy tokens on the GPU match transformers" *
          doctest::skip(no_gpu())) {
  for (const std::string name : {"llama-tiny", "llama-tiny-tied", "llama3-tiny-ropescaling",
                                 "qwen2-tiny", "mistral-tiny-swa"}) {
    CAPTURE(name);
    LoadedModel m = load_model(hf_tiny_dir(name), 1, 16, 64, {}, gpu_backend(0.05));
    const auto cases = load_reference(name);
    const std::int64_t vocab = m.model->spec().vocab_size;
    float worst = 0;
    for (std::size_t c = 0; c < cases.size(); ++c) {
      const ReferenceCase& rc = cases[c];
      const auto id = static_cast<SequenceId>(c);
      REQUIRE(m.blocks->reserve(
          id, static_cast<std::int64_t>(rc.input_ids.size() + rc.greedy_new_tokens.size())));
      std::vector<SequenceStep> prefill{
          {rc.input_ids, 0, m.blocks->block_table(id), LogitsWanted::kAll}};
      StepResult out = m.model->forward(prefill);
      for (std::size_t p = 0; p < rc.logits.size(); ++p) {
        worst = std::max(worst,
                         max_abs_error(out.row(static_cast<std::int64_t>(p), vocab), rc.logits[p]));
      }
      // Greedy decode through the paged cache, one token per step.
      std::vector<std::int32_t> generated;
      auto last = out.row(static_cast<std::int64_t>(rc.input_ids.size()) - 1, vocab);
      std::int64_t position = static_cast<std::int64_t>(rc.input_ids.size());
      for (std::size_t t = 0; t < rc.greedy_new_tokens.size(); ++t) {
        const auto token =
            static_cast<std::int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
        generated.push_back(token);
        if (t + 1 == rc.greedy_new_tokens.size()) break;
        const std::vector<std::int32_t> next{token};
        std::vector<SequenceStep> decode{
            {next, position++, m.blocks->block_table(id), LogitsWanted::kLast}};
        out = m.model->forward(decode);
        last = out.row(0, vocab);
      }
      CHECK(generated == rc.greedy_new_tokens);
      m.blocks->release(id);
    }
    CHECK(worst < 1e-4f);
    MESSAGE(name << ": max abs logit error " << worst);
  }
}

namespace {

// Questions of every kind a data-generation job asks; with the ten prompts of the
// transformers reference they make 64 chat prompts.
const char* const kQuestions[] = {
    "Name a famous painting by Leonardo da Vinci.",
    "Why is the sky blue?",
    "Give me a synonym for happy.",
    "How many legs does a spider have?",
    "What is the boiling point of water in Celsius?",
    "Write one sentence about autumn.",
    "What does DNA stand for?",
    "Suggest a name for a pet goldfish.",
    "What is the square root of 81?",
    "Describe the taste of a lemon.",
    "Who wrote Romeo and Juliet?",
    "What is photosynthesis?",
    "Tell me a fun fact about octopuses.",
    "Convert 5 kilometers to meters.",
    "What is the largest planet in our solar system?",
    "Write a short greeting for a birthday card.",
    "What language is spoken in Brazil?",
    "Explain gravity to a child.",
    "What is the opposite of cold?",
    "List two renewable energy sources.",
    "What year did humans first land on the Moon?",
    "How do bees make honey?",
    "Give an example of a mammal that can fly.",
    "What is the chemical symbol for gold?",
    "Summarize the plot of Cinderella in one sentence.",
    "What is a prime number?",
    "Recommend a book for a long flight.",
    "How many continents are there?",
    "What is the freezing point of water in Fahrenheit?",
    "Write a rhyme about a cat.",
    "What is the main ingredient in guacamole?",
    "Why do leaves change color in the fall?",
    "What is 7 times 8?",
    "Name three musical instruments.",
    "What is the capital of Japan?",
    "How does a rainbow form?",
    "Give me a tip for staying focused.",
    "What is the tallest mountain on Earth?",
    "Explain what a noun is.",
    "What do pandas eat?",
    "Write a motivational quote.",
    "What is the speed of light?",
    "Name a healthy breakfast.",
    "What causes tides?",
    "How many days are in a leap year?",
    "What is an atom?",
    "Describe a sunset in five words.",
    "What is the currency of the United Kingdom?",
    "Why do we need sleep?",
    "What is the longest river in the world?",
    "Give a simple definition of democracy.",
    "What sound does a cow make?",
    "How many sides does a hexagon have?",
    "What is machine learning?",
};

// Greedy continuations of `new_tokens` through a whole pipeline.
std::vector<std::vector<std::int32_t>> greedy_tokens(
    const ModelSource& source, const std::vector<std::vector<std::int32_t>>& prompts,
    const LocalPipelineOptions& pipeline_options, std::int32_t new_tokens,
    std::string* backend_name) {
  SamplingParams greedy;
  greedy.temperature = 0;
  greedy.max_tokens = new_tokens;
  return pipeline_tokens(source, prompts, pipeline_options, greedy, backend_name);
}

std::size_t agreeing(const std::vector<std::int32_t>& a, const std::vector<std::int32_t>& b) {
  std::size_t same = 0;
  while (same < a.size() && same < b.size() && a[same] == b[same])
    ++same;
  return same;
}

}  // namespace

// SmolLM2's Q4_1 weights widened to 16 bits on the GPU, and 16-bit inputs to every
// GEMM, against the CPU engine, which keeps the Q4_1 weights exact and f32
// activations (and equals transformers on the reference prompts).
TEST_CASE("SmolLM2 on the GPU: greedy continuations agree with the CPU engine" *
          doctest::skip(no_gpu())) {
  const auto path = resolve_model_path("smollm2-135m-instruct");
  if (!path.ok()) {
    MESSAGE("skipped: the default model is not installed");
    return;
  }
  auto source = open_model_source(*path).value();
  const Tokenizer tokenizer(*source->tokenizer());
  std::ifstream in(std::string(CONVEYOR_FIXTURES_DIR) + "/smollm2/reference.json");
  const auto json = nlohmann::json::parse(in);
  std::vector<std::vector<std::int32_t>> prompts;
  std::vector<std::vector<std::int32_t>> transformers;
  for (const auto& c : json.at("cases")) {
    prompts.push_back(c.at("input_ids").get<std::vector<std::int32_t>>());
    transformers.push_back(c.at("greedy_new_tokens").get<std::vector<std::int32_t>>());
  }
  const std::string system =
      "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
      "Face<|im_end|>\n<|im_start|>user\n";
  // The questions are encoded as the reference's prompts were.
  CHECK(tokenizer.encode(json.at("cases").at(0).at("chat_text").get<std::string>(), true, true) ==
        prompts.front());
  for (const char* question : kQuestions) {
    prompts.push_back(
        tokenizer.encode(system + question + "<|im_end|>\n<|im_start|>assistant\n", true, true));
  }
  constexpr std::int32_t kNewTokens = 24;
  LocalPipelineOptions cpu_options;
  cpu_options.kv = {1024, 16};
  std::string cpu_name;
  const auto cpu = greedy_tokens(*source, prompts, cpu_options, kNewTokens, &cpu_name);
  // The CPU engine equals transformers on the reference prompts.
  for (std::size_t i = 0; i < transformers.size(); ++i)
    CHECK(agreeing(cpu[i], transformers[i]) == static_cast<std::size_t>(kNewTokens));

  struct Mode {
    CudaMatrixType matrices;
    const char* name;
    DType kv_dtype;
    double wanted;  // share of prompts agreeing for 16+ tokens
  };
  // The default for a GGUF-quantised model (f16 matrices, bf16 K/V), then bf16 mode.
  // bf16's 8-bit mantissa on the weights and on every GEMM input drifts further:
  // measured on an H200, 52 of these 64 prompts (81%) agree in bf16 mode.
  for (const Mode mode : {Mode{CudaMatrixType::kAuto, "f16 (auto)", DType::kBF16, 0.9},
                          Mode{CudaMatrixType::kAuto, "f16 (auto)", DType::kF32, 0.9},
                          Mode{CudaMatrixType::kBf16, "bf16", DType::kBF16, 0.75},
                          Mode{CudaMatrixType::kBf16, "bf16", DType::kF32, 0.75}}) {
    const DType kv_dtype = mode.kv_dtype;
    CAPTURE(std::string(mode.name));
    CAPTURE(dtype_name(kv_dtype));
    LocalPipelineOptions gpu_options;
    gpu_options.backend.kind = BackendKind::kCuda;
    gpu_options.backend.gpu_memory_fraction = 0.1;
    gpu_options.backend.cuda_matrices = mode.matrices;
    gpu_options.kv = {1024, 16};
    gpu_options.kv.dtype = kv_dtype;
    std::string gpu_name;
    const auto gpu = greedy_tokens(*source, prompts, gpu_options, kNewTokens, &gpu_name);
    std::size_t agree_16 = 0;
    std::size_t agree_all = 0;
    std::size_t reference_16 = 0;
    std::string prefixes;
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      const std::size_t same = agreeing(gpu[i], cpu[i]);
      agree_16 += same >= 16 ? 1 : 0;
      agree_all += same == static_cast<std::size_t>(kNewTokens) ? 1 : 0;
      if (i < transformers.size()) reference_16 += agreeing(gpu[i], transformers[i]) >= 16;
      prefixes += ' ';
      prefixes += std::to_string(same);
    }
    MESSAGE("SmolLM2 " << std::string(mode.name) << " matrices, " << dtype_name(kv_dtype)
                       << " K/V on " << gpu_name << " against " << cpu_name << ": " << agree_16
                       << " of " << prompts.size() << " prompts agree for 16+ tokens, " << agree_all
                       << " for all " << kNewTokens << "; with transformers " << reference_16
                       << " of " << transformers.size()
                       << "; tokens agreeing per prompt:" << prefixes);
    CHECK(static_cast<double>(agree_16) >= mode.wanted * static_cast<double>(prompts.size()));
  }
}
