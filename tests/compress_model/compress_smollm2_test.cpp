// `conveyor compress` on the default model (SmolLM2-135M-Instruct, whose GGUF is Q4_1
// with a Q8_0 embedding): int8, and int4 with activation-aware scales from calibration
// text, produce directories that `generate` and `run` load and answer from; int8's
// greedy continuations mostly agree with the source's; the quality report agrees that
// int8 costs little; and the reference forward compression calibrates with matches the
// engine on this GGUF (interleaved RoPE). Skipped without the default model.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/loader/open_model.h"
#include "common/model_registry.h"
#include "compress/reference_forward.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/cli/conveyor_process.h"
#include "tests/temp_dir.h"
#include "worker/llama_model.h"

using namespace conveyor;
using namespace conveyor::testing;
namespace fs = std::filesystem;

namespace {

const std::string kModel = "smollm2-135m-instruct";

bool model_installed() {
  return resolve_model_path(kModel).ok();
}

// Calibration apart from the evaluation text (the Gospel of John): Genesis 1:1-10, KJV.
constexpr const char* kCalibration =
    "In the beginning God created the heaven and the earth.\n"
    "And the earth was without form, and void; and darkness was upon the face of the deep. And "
    "the Spirit of God moved upon the face of the waters.\n"
    "And God said, Let there be light: and there was light.\n"
    "And God saw the light, that it was good: and God divided the light from the darkness.\n"
    "And God called the light Day, and the darkness he called Night. And the evening and the "
    "morning were the first day.\n"
    "And God said, Let there be a firmament in the midst of the waters, and let it divide the "
    "waters from the waters.\n"
    "And God made the firmament, and divided the waters which were under the firmament from the "
    "waters which were above the firmament: and it was so.\n"
    "And God called the firmament Heaven. And the evening and the morning were the second day.\n"
    "And God said, Let the waters under the heaven be gathered together unto one place, and let "
    "the dry land appear: and it was so.\n"
    "And God called the dry land Earth; and the gathering together of the waters called he Seas: "
    "and God saw that it was good.\n";

const std::vector<std::string> kPrompts = {
    "What is the capital of France?",       "Name three colours of the rainbow.",
    "Write one sentence about the sea.",    "What is two plus two?",
    "Give me a word that rhymes with cat.",
};

// `conveyor compress ARGS`, which must succeed; what it printed.
std::string compress_cli(const std::string& args) {
  const CommandOutput r = run_conveyor("compress " + args);
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  return r.out;
}

// Its last lines: the summary and, with --eval, the quality.
std::string summary_of(const std::string& out) {
  const std::size_t at = out.rfind("[compress] wrote");
  return at == std::string::npos ? out : out.substr(at);
}

// The first 8 greedy tokens' ids, or "" when generate failed.
std::string greedy_ids(const std::string& model, const std::string& prompt) {
  const CommandOutput r = run_conveyor("generate -q --model " + model + " --prompt '" + prompt +
                                       "' --max-tokens 8 --temperature 0 --ignore-eos --print-ids");
  INFO(r.out);
  CHECK(r.exit_code == 0);
  return r.exit_code == 0 ? r.out : "";
}

// A small batch through `conveyor run`: every line answered.
void check_run(const TempDir& dir, const std::string& model, const std::string& name) {
  const fs::path in = dir.file(name + ".in.jsonl");
  const fs::path out = dir.file(name + ".out.jsonl");
  std::ofstream(in) << "{\"custom_id\": \"a\", \"method\": \"POST\", \"url\": "
                       "\"/v1/chat/completions\", \"body\": {\"messages\": [{\"role\": \"user\", "
                       "\"content\": \"Say hello.\"}], \"max_tokens\": 8, \"temperature\": 0}}\n"
                       "{\"custom_id\": \"b\", \"method\": \"POST\", \"url\": \"/v1/completions\", "
                       "\"body\": {\"prompt\": \"The sky is\", \"max_tokens\": 6}}\n";
  const CommandOutput r = run_conveyor("run --model " + model + " --progress off -i " +
                                       in.string() + " -o " + out.string());
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  std::ifstream lines(out);
  int answered = 0;
  for (std::string line; std::getline(lines, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    CHECK(j.at("response").at("status_code") == 200);
    CHECK(j.at("response").at("body").at("usage").at("completion_tokens").get<int>() > 0);
    ++answered;
  }
  CHECK(answered == 2);
}

}  // namespace

TEST_CASE("compress int8 and int4 --calib: generate and run answer from the directories") {
  if (!model_installed()) {
    MESSAGE("skipped: the default model is not installed");
    return;
  }
  const TempDir dir;
  const std::string int8 = (dir.path() / "int8").string();
  const std::string int4 = (dir.path() / "int4").string();
  const std::string eight_out = compress_cli(
      "--model " + kModel + " --out " + int8 + " --method int8 --eval " + CONVEYOR_FIXTURES_DIR +
      "/perplexity/john-1-3.txt --eval-tokens 384 " + "--eval-window 192");
  MESSAGE(summary_of(eight_out));
  std::ofstream(dir.file("calibration.txt")) << kCalibration;
  const std::string four_out =
      compress_cli("--model " + kModel + " --out " + int4 + " --method int4 --calib " +
                   dir.file("calibration.txt").string() + " --calib-tokens 128");
  CHECK(four_out.find("q4_1 (rows of 576 are no multiple of 128") != std::string::npos);
  CHECK(four_out.find("awq") != std::string::npos);
  MESSAGE(summary_of(four_out));

  // int8 costs little: the quality report beside it says so.
  std::ifstream report_file(int8 + "/report.json");
  const nlohmann::json report = nlohmann::json::parse(report_file);
  const nlohmann::json& quality = report.at("quality");
  MESSAGE("int8: " << quality.dump());
  CHECK(quality.at("kl_mean").get<double>() < 0.05);
  CHECK(quality.at("top1_agreement").get<double>() > 0.85);
  CHECK(quality.at("perplexity").get<double>() ==
        doctest::Approx(quality.at("perplexity_source").get<double>()).epsilon(0.05));

  int same = 0;
  for (const std::string& prompt : kPrompts) {
    const std::string original = greedy_ids(kModel, prompt);
    const std::string eight = greedy_ids(int8, prompt);
    const std::string four = greedy_ids(int4, prompt);
    CHECK(std::count(four.begin(), four.end(), ',') == 7);
    same += !original.empty() && original == eight ? 1 : 0;
  }
  MESSAGE("int8: " << same << " of " << kPrompts.size() << " greedy continuations as the source's");
  CHECK(same >= 3);

  check_run(dir, int8, "int8");
  check_run(dir, int4, "int4");
}

TEST_CASE("the reference forward matches the engine on the default model's GGUF") {
  if (!model_installed()) {
    MESSAGE("skipped: the default model is not installed");
    return;
  }
  const auto source = open_model_source(resolve_model_path(kModel).value()).value();
  const std::vector<std::int32_t> tokens = {1, 504, 3458, 282, 4371, 314, 253};
  ThreadPool pool(2);
  const std::vector<float> ref = compress::reference_logits(*source, tokens, pool);

  const ModelSpec& spec = source->spec();
  CpuBackendOptions options;
  options.threads = 2;
  CpuBackend backend(options);
  KvCache cache(backend, {spec.num_layers, 1, 16, spec.kv_dim()});
  LlamaModel model(backend, ModelWeights::load(backend, *source, LayerRange::all(spec)), cache);
  const std::vector<std::int32_t> table = {0};
  const SequenceStep step{tokens, 0, table, LogitsWanted::kAll};
  const std::vector<float> engine = model.forward(std::span<const SequenceStep>(&step, 1)).logits;
  REQUIRE(engine.size() == ref.size());
  float worst = 0;
  float largest = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    worst = std::max(worst, std::fabs(ref[i] - engine[i]));
    largest = std::max(largest, std::fabs(engine[i]));
  }
  MESSAGE("largest |logit| " << largest << ", largest difference " << worst);
  CHECK(worst < 1e-3f * largest);
}
