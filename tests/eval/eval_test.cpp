// `conveyor eval` on the default model (SmolLM2-135M-Instruct, Q4_1 GGUF) as a user runs
// it: its perplexity on a slice of the evaluation text agrees with what transformers
// computes for the same GGUF and the same windows (tests/fixtures/perplexity, made by
// scripts/make-perplexity-reference.py), and the model against itself diverges by
// nothing. Skipped without the default model.
#include <doctest/doctest.h>

#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "common/model_registry.h"
#include "tests/cli/conveyor_process.h"

namespace {

using conveyor::testing::CommandOutput;
using conveyor::testing::run_conveyor;

const std::string kModel = "smollm2-135m-instruct";

std::string fixture(const std::string& name) {
  return std::string(CONVEYOR_FIXTURES_DIR) + "/perplexity/" + name;
}

bool model_installed() {
  return conveyor::resolve_model_path(kModel).ok();
}

nlohmann::json reference() {
  std::ifstream in(fixture("smollm2-135m-instruct.json"));
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

// --quiet keeps stderr empty, so that the output is the JSON object alone.
nlohmann::json eval_json(const std::string& args) {
  const CommandOutput r = run_conveyor("eval --model " + kModel + " --text " +
                                       fixture("john-1-3.txt") + " --json --quiet " + args);
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  return nlohmann::json::parse(r.out);
}

}  // namespace

TEST_CASE("eval: perplexity within 1% of transformers' on the same GGUF, text and windows") {
  if (!model_installed()) {
    MESSAGE("skipped: the default model is not installed");
    return;
  }
  const nlohmann::json want = reference();
  const nlohmann::json got = eval_json("--window " + want.at("window").dump() + " --max-tokens " +
                                       want.at("max_tokens").dump());
  // The same tokens (the text tokenised alike) in the same windows.
  CHECK(got.at("text_tokens") == want.at("text_tokens"));
  CHECK(got.at("tokens_scored") == want.at("tokens_scored"));
  CHECK(got.at("windows") == want.at("windows"));
  const double perplexity = got.at("perplexity").get<double>();
  const double expected = want.at("perplexity").get<double>();
  MESSAGE("perplexity: conveyor " << perplexity << ", transformers " << expected);
  CHECK(perplexity == doctest::Approx(expected).epsilon(0.01));
  CHECK(got.contains("seconds"));
  CHECK(!got.contains("kl_mean"));
}

TEST_CASE("eval: the model against itself has KL 0 and agrees on every top-1 token") {
  if (!model_installed()) {
    MESSAGE("skipped: the default model is not installed");
    return;
  }
  const nlohmann::json got = eval_json("--reference " + kModel + " --window 256 --max-tokens 512");
  CHECK(got.at("tokens_scored") == 510);
  CHECK(got.at("windows") == 2);
  CHECK(got.at("kl_mean").get<double>() < 1e-9);
  CHECK(got.at("top1_agreement").get<double>() == 1.0);
  CHECK(got.at("reference_perplexity").get<double>() ==
        doctest::Approx(got.at("perplexity").get<double>()).epsilon(1e-9));
}

TEST_CASE("eval: refusals say what is wrong") {
  SUBCASE("a missing text") {
    const CommandOutput r = run_conveyor("eval --model " + std::string(CONVEYOR_FIXTURES_DIR) +
                                         "/hf-tiny/llama-tiny --text /nonexistent/text.txt");
    CHECK(r.exit_code != 0);
    CHECK(r.out.find("--text") != std::string::npos);
  }
  if (!model_installed()) {
    MESSAGE("skipped: the default model is not installed");
    return;
  }
  SUBCASE("a window longer than the context") {
    const CommandOutput r = run_conveyor("eval --model " + kModel + " --text " +
                                         fixture("john-1-3.txt") + " --window 100000");
    CHECK(r.exit_code != 0);
    CHECK(r.out.find("context") != std::string::npos);
  }
  SUBCASE("a reference with another tokenizer") {
    const CommandOutput r =
        run_conveyor("eval --model " + kModel + " --text " + fixture("john-1-3.txt") +
                     " --reference " + CONVEYOR_FIXTURES_DIR + "/hf-tiny/llama-tiny");
    CHECK(r.exit_code != 0);
    CHECK(r.out.find("--reference") != std::string::npos);
    MESSAGE(r.out);
  }
}
