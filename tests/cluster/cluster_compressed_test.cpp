// What `conveyor compress` writes, every method and pruning mode, is a model that
// `generate`, `run` and a cluster load and answer from alike: a coordinator and two
// workers, each holding one stage, answer a batch with one line per custom_id, each
// the line `conveyor run` writes for it on the same directory; `generate` continues a
// prompt as `run` does. The source is a small random model with a real tokenizer, of
// rows of 128 so that int4 takes its q4_g128 form, saved as a Conveyor directory;
// compressing it, like each job, takes a fraction of a second (all of it: seconds).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/conveyor_model/model_reader.h"
#include "common/conveyor_model/save_model.h"
#include "common/synthetic/random_model_source.h"
#include "common/tokenizer/tokenizer_json.h"
#include "tests/cluster/test_cluster.h"
#include "tests/conveyor_model/model_source_wrapper.h"
#include "tests/json_lines.h"

namespace {

using namespace conveyor;
using namespace conveyor::testing;
namespace fs = std::filesystem;

// Writes the source every variant compresses to `dir` and returns its path: 4 blocks
// (layers:1 leaves 3, still two stages), hidden 128 and ffn 256 (every linear's rows a
// multiple of 128 and of 16, so that int4 is q4_g128 and f16 2:4 is s24_f16), f16
// matrices, and the qwen2-bpe fixture's tokenizer (random models have none), its
// vocabulary the model's, so that calibration text and text prompts have tokens.
std::string write_source_model(const TempDir& dir) {
  Expected<TokenizerData> tokenizer = load_tokenizer_json(std::string(CONVEYOR_FIXTURES_DIR) +
                                                          "/tokenizer/qwen2-bpe/tokenizer.json");
  REQUIRE_MESSAGE(tokenizer.ok(), tokenizer.status().to_string());
  const auto vocab = static_cast<std::int64_t>(tokenizer->tokens.size());
  const ModelShape shape{"compress-cluster", 128, 4, 4, 2, 256, vocab, false, 10000};
  RandomModelOptions options;
  options.dtype = DType::kF16;
  options.seed = 7;
  options.max_positions = 256;
  options.threads = 2;
  const ModelWithTokenizer source(make_random_model(shape, options), std::move(tokenizer).value());
  const std::string path = (dir.path() / "source").string();
  save_conveyor_model(source, path);
  return path;
}

// Calibration for Wanda, layers:N, mixed and the activation-aware int4 scales: a few
// sentences, tokens enough for each.
constexpr const char* kCalibration =
    "In the beginning God created the heaven and the earth. And the earth was without form, "
    "and void; and darkness was upon the face of the deep. And God said, Let there be light: "
    "and there was light. And God saw the light, that it was good.\n";

struct Variant {
  std::string args;        // of `conveyor compress`, beyond --model, --out and --calib
  bool calibrated;         // given --calib (wanda, layers:N and mixed need it)
  std::set<DType> dtypes;  // those the blocks' linears are stored in
  std::int64_t layers;     // blocks left
};

const Variant kVariants[] = {
    {"--method int4", false, {DType::kQ4_G128}, 4},
    {"--method int8 --prune 2:4", false, {DType::kQ8_R}, 4},
    {"--method fp8", false, {DType::kF8_R}, 4},
    {"--method f16 --prune 2:4", false, {DType::kS24_F16}, 4},
    // Activation-aware int4 scales too, from the same calibration.
    {"--method int4 --prune layers:1", true, {DType::kQ4_G128}, 3},
    {"--method int8 --prune magnitude:0.3", false, {DType::kQ8_R}, 4},
    {"--method int4 --prune wanda:0.3", true, {DType::kQ4_G128}, 4},
    // Too small for int8 everywhere (1.2 MiB): the more sensitive blocks int8, the rest
    // int4.
    {"--method mixed --target-size 1.05MiB", true, {DType::kQ8_R, DType::kQ4_G128}, 4},
};

// `count` greedy completions of different lengths, generated to their end.
void write_completions(const fs::path& path, int count) {
  std::ofstream out(path, std::ios::trunc);
  for (int i = 0; i < count; ++i) {
    // Appended, not "c" + ...: GCC 12 misreports that under -Wrestrict.
    std::string id = "c";
    id += std::to_string(i);
    const nlohmann::json line = {
        {"custom_id", id},
        {"method", "POST"},
        {"url", "/v1/completions"},
        {"body",
         {{"prompt", "Story number " + std::to_string(i) + ": the earth was"},
          {"max_tokens", 4 + (i % 4) * 4},
          {"temperature", 0},
          {"ignore_eos", true}}}};
    out << line.dump() << '\n';
  }
  REQUIRE(out.good());
}

// `conveyor run` on `model`: every line a result with the tokens asked for; custom_id ->
// answer.
std::map<std::string, std::string> run_answers(const TempDir& dir, const std::string& model,
                                               const fs::path& input) {
  const fs::path output = dir.file("run.jsonl");
  ChildProcess run({conveyor_binary(), "run", "--model", model, "--input", input.string(),
                    "--output", output.string(), "--progress", "off", "--threads", "2"},
                   dir.file("run.log"));
  const std::optional<int> code = run.wait_for_exit(kJobTimeout);
  REQUIRE_MESSAGE(code.has_value(), "conveyor run did not finish:\n", run.log());
  REQUIRE_MESSAGE(*code == 0, "conveyor run failed:\n", run.log());
  std::map<std::string, int> asked;
  for (const nlohmann::json& line : read_json_lines(input))
    asked[line.at("custom_id").get<std::string>()] = line.at("body").at("max_tokens").get<int>();
  for (const nlohmann::json& line : read_json_lines(output)) {
    CHECK(line.at("response").at("status_code") == 200);
    CHECK(line.at("response").at("body").at("usage").at("completion_tokens").get<int>() ==
          asked.at(line.at("custom_id").get<std::string>()));
  }
  return answers_by_custom_id(output);
}

}  // namespace

TEST_CASE("cluster: every compress method loads in two stages and answers as conveyor run does") {
  const TempDir source_dir;
  const std::string source = write_source_model(source_dir);
  for (const Variant& v : kVariants) {
    CAPTURE(v.args);
    const TempDir dir;
    const std::string model = (dir.path() / "model").string();
    std::string args = v.args;
    if (v.calibrated) {
      std::ofstream(dir.file("calibration.txt")) << kCalibration;
      args += " --calib " + dir.file("calibration.txt").string() + " --calib-tokens 96";
    }
    const CommandOutput compressed =
        run_conveyor("compress --model " + source + " --out " + model + " --threads 2 " + args);
    INFO(compressed.out);
    REQUIRE(compressed.exit_code == 0);
    {
      const auto loaded = ConveyorModelSource::open(model).value();
      CHECK(loaded->spec().num_layers == v.layers);
      std::set<DType> dtypes;
      for (const TensorRef& t : loaded->tensors())
        if (const TensorScheme* scheme = loaded->manifest().find(t.name);
            scheme != nullptr && scheme->role == "linear")
          dtypes.insert(t.dtype);
      CHECK(dtypes == v.dtypes);
    }

    const fs::path input = dir.file("in.jsonl");
    write_completions(input, 12);
    const std::map<std::string, std::string> reference = run_answers(dir, model, input);
    REQUIRE(reference.size() == 12);

    // generate continues a prompt greedily as run does: the same text.
    {
      const CommandOutput g = run_conveyor("generate -q --raw --model " + model +
                                           " --prompt 'Story number 3: the earth was' "
                                           "--max-tokens 16 --temperature 0 --ignore-eos "
                                           "--threads 2");
      INFO(g.out);
      CHECK(g.exit_code == 0);
      const nlohmann::json choices = nlohmann::json::parse(reference.at("c3"));
      const std::string text = choices.at(0).at("text").get<std::string>();
      CHECK(!text.empty());
      CHECK(g.out == text + "\n");
    }

    TestCluster cluster("  stages: 2\n", kFastClusterSettings, model);
    INFO(cluster.logs());
    ChildProcess& coordinator = cluster.start_coordinator();
    cluster.start_worker("w1");
    cluster.start_worker("w2");
    const SubmitRun job = cluster.submit(
        {"--input", input.string(), "--output", cluster.file("out.jsonl").string(), "--wait"},
        "submit.log");
    CHECK(job.exit_code == 0);
    CHECK(line_count(cluster.file("out.errors.jsonl")) == 0);
    const std::map<std::string, std::string> answers =
        answers_by_custom_id(cluster.file("out.jsonl"));
    CHECK(answers.size() == reference.size());
    for (const auto& [id, answer] : reference) {
      const auto it = answers.find(id);
      if (it == answers.end()) {
        FAIL_CHECK("no output line for ", id);
        continue;
      }
      CHECK_MESSAGE(it->second == answer, "different answer for ", id);
    }
    // One replica of both workers, each holding a stage.
    const std::vector<LiveReplica> replicas = live_replicas(coordinator.log());
    REQUIRE(replicas.size() == 1);
    CHECK(replicas[0].workers.size() == 2);
  }
}
