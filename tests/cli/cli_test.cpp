// End-to-end checks of the conveyor binary: what a user types, what they see.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "common/model_registry.h"
#include "tests/cli/conveyor_process.h"

namespace {

using conveyor::testing::CommandOutput;
using conveyor::testing::run_conveyor;

std::string fixture(const std::string& name) {
  return std::string(CONVEYOR_FIXTURES_DIR) + "/hf-tiny/" + name;
}

std::string join_ids(const nlohmann::json& ids) {
  std::ostringstream s;
  const char* separator = "";
  for (const auto& id : ids) {
    s << separator << id.get<int>();
    separator = ",";
  }
  return s.str();
}

}  // namespace

TEST_CASE("generate --prompt-ids reproduces the reference greedy tokens of every fixture") {
  for (const char* name : {"llama-tiny", "llama-tiny-tied", "llama3-tiny-ropescaling", "qwen2-tiny",
                           "mistral-tiny-swa"}) {
    CAPTURE(name);
    std::ifstream in(fixture(name) + "/reference.json");
    const auto reference = nlohmann::json::parse(in);
    const auto& c = reference["cases"][1];
    const CommandOutput r = run_conveyor(
        "generate --model " + fixture(name) + " --prompt-ids " + join_ids(c["input_ids"]) +
        " --print-ids --temperature 0 --ignore-eos --max-tokens 16 --quiet");
    CHECK(r.exit_code == 0);
    CHECK(r.out == join_ids(c["greedy_new_tokens"]) + "\n");
  }
}

TEST_CASE("inspect describes a Hugging Face directory") {
  const CommandOutput r = run_conveyor("inspect " + fixture("qwen2-tiny"));
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("architecture: qwen2") != std::string::npos);
  CHECK(r.out.find("4 heads, 2 kv heads (GQA), head_dim 16, qkv bias") != std::string::npos);
  CHECK(r.out.find("tied embeddings") != std::string::npos);
  CHECK(r.out.find("tokenizer:    none") != std::string::npos);
}

TEST_CASE("bad input fails with a clear message and a non-zero exit") {
  SUBCASE("missing model") {
    const CommandOutput r = run_conveyor("inspect /nonexistent/model");
    CHECK(r.exit_code != 0);
    CHECK(r.out.find("no model at /nonexistent/model") != std::string::npos);
  }
  SUBCASE("pickle checkpoint") {
    const auto dir = std::filesystem::temp_directory_path() / "conveyor-cli-pickle";
    std::filesystem::create_directories(dir);
    { std::ofstream(dir / "pytorch_model.bin") << "not really a pickle"; }
    const CommandOutput r = run_conveyor("inspect " + (dir / "pytorch_model.bin").string());
    CHECK(r.exit_code != 0);
    CHECK(r.out.find("pickle") != std::string::npos);
    std::filesystem::remove_all(dir);
  }
  SUBCASE("prompt ids outside the vocabulary") {
    const CommandOutput r = run_conveyor("generate --model " + fixture("llama-tiny") +
                                         " --prompt-ids 5,99999 --print-ids --quiet");
    CHECK(r.exit_code != 0);
    CHECK(r.out.find("outside the vocabulary") != std::string::npos);
  }
  SUBCASE("text prompt for a model without a tokenizer") {
    const CommandOutput r =
        run_conveyor("generate --model " + fixture("llama-tiny") + " --prompt hi");
    CHECK(r.exit_code != 0);
    CHECK(r.out.find("--prompt-ids") != std::string::npos);
  }
  SUBCASE("a seed outside 64 bits") {
    const CommandOutput r = run_conveyor("generate --model " + fixture("llama-tiny") +
                                         " --prompt-ids 5,6 --seed 18446744073709551616");
    CHECK(r.exit_code != 0);
    CHECK(r.out.find("--seed") != std::string::npos);
  }
  SUBCASE("nonsense sampling parameters") {
    const CommandOutput r =
        run_conveyor("generate --model " + fixture("llama-tiny") + " --prompt-ids 5,6 --top-p 1.5");
    CHECK(r.exit_code != 0);
    CHECK(r.out.find("top_p") != std::string::npos);
  }
}

TEST_CASE("the default model answers the capital of France with Paris") {
  const auto path = conveyor::resolve_model_path("smollm2-135m-instruct");
  if (!path.ok()) {
    MESSAGE("default model not installed (scripts/install-model.sh): skipped");
    return;
  }
  const CommandOutput r = run_conveyor(
      "generate --model smollm2-135m-instruct --prompt \"What is the capital of France?\" "
      "--max-tokens 32 --temperature 0 --quiet");
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("Paris") != std::string::npos);
  MESSAGE("answer: " << r.out);
}

TEST_CASE("generate --logprobs prints one line per token with the alternatives") {
  const CommandOutput r = run_conveyor("generate --model " + fixture("llama-tiny") +
                                       " --prompt-ids 5,17,42 --print-ids --temperature 0"
                                       " --max-tokens 4 --ignore-eos --logprobs 3 --quiet");
  CHECK(r.exit_code == 0);
  for (int i = 0; i < 4; ++i) {
    CHECK(r.out.find("[logprobs] " + std::to_string(i) + ": ") != std::string::npos);
  }
  CHECK(r.out.find("[logprobs] 4: ") == std::string::npos);
}

TEST_CASE("a model without a tokenizer prints ids even without --print-ids") {
  const CommandOutput r = run_conveyor("generate --model " + fixture("llama-tiny") +
                                       " --prompt-ids 5,17,42 --temperature 0 --max-tokens 3"
                                       " --ignore-eos --quiet");
  CHECK(r.exit_code == 0);
  CHECK(std::count(r.out.begin(), r.out.end(), ',') == 2);
}
