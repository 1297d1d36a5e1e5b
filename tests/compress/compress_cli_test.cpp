// `conveyor compress` as a user runs it, on the hf-tiny fixtures: what it prints, what
// it writes (the directory and report.json), and what it refuses.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "tests/cli/conveyor_process.h"
#include "tests/temp_dir.h"

using namespace conveyor::testing;
namespace fs = std::filesystem;

namespace {

std::string fixture(const std::string& name) {
  return std::string(CONVEYOR_FIXTURES_DIR) + "/hf-tiny/" + name;
}

}  // namespace

TEST_CASE("compress writes a directory, a report and a summary, and generate loads it") {
  const TempDir dir;
  for (const std::string method : {"int8", "int4", "fp8"}) {
    CAPTURE(method);
    const std::string out = (dir.path() / method).string();
    const CommandOutput r = run_conveyor("compress --model " + fixture("qwen2-tiny") + " --out " +
                                         out + " --method " + method + " --threads 2");
    INFO(r.out);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("[compress] layer 1/") != std::string::npos);
    CHECK(r.out.find("on disk (source") != std::string::npos);
    if (method == "int4") CHECK(r.out.find("no multiple of 128") != std::string::npos);
    CHECK(fs::exists(out + "/conveyor-model.json"));
    std::ifstream in(out + "/report.json");
    const nlohmann::json report = nlohmann::json::parse(in);
    CHECK(report.at("bytes").get<std::uint64_t>() < report.at("bytes_source").get<std::uint64_t>());
    CHECK(report.at("method") == method);

    const CommandOutput g = run_conveyor("generate -q --model " + out +
                                         " --prompt-ids 5,6,7 --max-tokens 4 --temperature 0 "
                                         "--ignore-eos --threads 2");
    INFO(g.out);
    CHECK(g.exit_code == 0);
    const CommandOutput i = run_conveyor("inspect " + out);
    CHECK(i.out.find("conveyor-model v1") != std::string::npos);
  }
}

TEST_CASE("compress refuses what it cannot do, saying why") {
  const TempDir dir;
  const std::string model = fixture("llama-tiny");
  const std::string out = (dir.path() / "out").string();
  struct Case {
    std::string args;
    std::string says;
  };
  const Case cases[] = {
      {"--method int3", "--method"},
      {"--method int4 --group 64", "--group"},
      {"--method int8 --prune magnitude:1.5", "--prune"},
      {"--method int8 --prune wanda:0.3", "--calib"},
      {"--method int4 --calib " + (dir.path() / "none.txt").string(), "--calib"},
      {"--method mixed --target-size 1MiB", "--calib"},
      {"--method int8 --target-size 1MiB", "--method mixed"},
      {"--method mixed --target-size lots --calib x.txt", "--target-size"},
      {"--method int8 --prune layers:1", "--calib"},
      {"--method int8 --prune layers:0 --calib x.txt", "layers:N"},
      {"--method int8 --prune layers:1 --prune 2:4", "one pruning mode"},
      {"--method int8 --prune layers:1,wanda:0.3", "one pruning mode"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.args);
    const CommandOutput r =
        run_conveyor("compress --model " + model + " --out " + out + " " + c.args);
    INFO(r.out);
    CHECK(r.exit_code != 0);
    CHECK(r.out.find(c.says) != std::string::npos);
  }
  // N is checked against the model's blocks before any reading of calibration text.
  {
    const CommandOutput r = run_conveyor("compress --model " + model + " --out " + out +
                                         " --method int4 --prune layers:99 --calib x.txt");
    INFO(r.out);
    CHECK(r.exit_code != 0);
    CHECK(r.out.find("N must be between 1 and") != std::string::npos);
  }
  // Calibration needs a tokenizer, which the fixtures lack.
  {
    std::ofstream(dir.path() / "calib.txt")
        << "In the beginning God created the heaven and the earth.";
    const CommandOutput r =
        run_conveyor("compress --model " + model + " --out " + out + " --method int4 --calib " +
                     (dir.path() / "calib.txt").string());
    CHECK(r.exit_code != 0);
    CHECK(r.out.find("tokenizer") != std::string::npos);
  }
  // A directory that holds something is not overwritten without --force.
  fs::create_directories(out);
  std::ofstream(fs::path(out) / "keep.txt") << "mine";
  CommandOutput r = run_conveyor("compress --model " + model + " --out " + out + " --method int8");
  CHECK(r.exit_code != 0);
  CHECK(r.out.find("--force") != std::string::npos);
  r = run_conveyor("compress --model " + model + " --out " + out + " --method int8 --force");
  CHECK(r.exit_code == 0);
  // Compressing into the source itself is refused even so.
  r = run_conveyor("compress --model " + out + " --out " + out + " --method int8 --force");
  CHECK(r.exit_code != 0);
}
