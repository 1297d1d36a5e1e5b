// `conveyor run` end to end, as a user runs it: one terminal line per custom_id,
// error lines for bad input lines, resume after kill -9 and after a cut last line,
// clear failures for what cannot run. Needs the default model; skipped without it.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/model_registry.h"
#include "tests/cli/conveyor_process.h"
#include "tests/json_lines.h"
#include "tests/temp_dir.h"

namespace {

namespace fs = std::filesystem;

using conveyor::testing::CommandOutput;
using conveyor::testing::read_json_lines;
using conveyor::testing::run_conveyor;
using conveyor::testing::TempDir;

// `producer | conveyor ARGS`.
CommandOutput conveyor_piped(const std::string& producer, const std::string& args) {
  return conveyor::testing::run_shell(producer + " | " + conveyor::testing::conveyor_binary() +
                                      " " + args);
}

// Concatenation through a stream: GCC 12 misreports string + to_string chains under
// -Wrestrict.
template <typename... Parts>
std::string cat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

bool model_installed() {
  return conveyor::resolve_model_path("smollm2-135m-instruct").ok();
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// custom_id -> how many terminal lines it has, over both files.
std::map<std::string, int> terminal_counts(const fs::path& output, const fs::path& errors) {
  std::map<std::string, int> counts;
  for (const fs::path& file : {output, errors})
    for (const auto& line : read_json_lines(file))
      ++counts[line.at("custom_id").get<std::string>()];
  return counts;
}

std::string chat_line(const std::string& id, const std::string& question, int max_tokens) {
  nlohmann::json line = {{"custom_id", id},
                         {"method", "POST"},
                         {"url", "/v1/chat/completions"},
                         {"body",
                          {{"messages", {{{"role", "user"}, {"content", question}}}},
                           {"max_tokens", max_tokens},
                           {"temperature", 0},
                           {"ignore_eos", true}}}};
  return line.dump() + "\n";
}

// id -> output text, for the result lines of a file.
std::map<std::string, std::string> texts(const fs::path& output) {
  std::map<std::string, std::string> by_id;
  for (const auto& line : read_json_lines(output)) {
    by_id[line.at("custom_id").get<std::string>()] =
        line.at("response").at("body").at("choices").at(0).at("message").at("content");
  }
  return by_id;
}

TEST_CASE("run: one terminal line per custom_id; bad lines become error lines; exit 2") {
  if (!model_installed()) {
    MESSAGE("skipped: the default model is not installed");
    return;
  }
  const TempDir scratch;
  const fs::path& dir = scratch.path();
  std::string input = chat_line("q1", "What is 2 + 2?", 8) +
                      "{\"prompt\": \"The sky is\", \"max_tokens\": 4, \"temperature\": 0}\n" +
                      "\n" +  // blank lines are skipped, not errors
                      "{not json\n" + chat_line("q1", "a duplicate id", 4) +
                      "{\"custom_id\": \"hot\", \"method\": \"POST\", \"url\": "
                      "\"/v1/chat/completions\", \"body\": {\"messages\": [{\"role\": \"user\", "
                      "\"content\": \"hi\"}], \"temperature\": -1}}\n" +
                      "{\"custom_id\": \"m\", \"method\": \"POST\", \"url\": "
                      "\"/v1/chat/completions\", \"body\": {\"model\": \"gpt-4o\", \"messages\": "
                      "[{\"role\": \"user\", \"content\": \"hi\"}]}}\n";
  input +=
      "{\"custom_id\": \"long\", \"method\": \"POST\", \"url\": \"/v1/completions\", "
      "\"body\": {\"prompt\": \"" +
      std::string(40000, 'a') + "\"}}\n";
  write_file(dir / "in.jsonl", input);
  const CommandOutput r =
      run_conveyor("run --model smollm2-135m-instruct --progress off -i " +
                   (dir / "in.jsonl").string() + " -o " + (dir / "out.jsonl").string());
  CHECK(r.exit_code == 2);
  const auto counts = terminal_counts(dir / "out.jsonl", dir / "out.errors.jsonl");
  const std::map<std::string, int> expected = {{"q1", 1},        {"request-2", 1}, {"line-4", 1},
                                               {"q1#line-5", 1}, {"hot", 1},       {"m", 1},
                                               {"long", 1}};
  CHECK(counts == expected);
  std::map<std::string, std::string> codes;
  for (const auto& e : read_json_lines(dir / "out.errors.jsonl")) {
    CHECK(e.at("response").is_null());
    codes[e.at("custom_id")] = e.at("error").at("code");
    CHECK(e.at("error").at("message").get<std::string>().find("line ") == 0);
  }
  CHECK(codes["line-4"] == "invalid_json");
  CHECK(codes["q1#line-5"] == "duplicate_custom_id");
  CHECK(codes["hot"] == "invalid_field");
  CHECK(codes["m"] == "model_not_found");
  CHECK(codes["long"] == "context_length_exceeded");
  for (const auto& line : read_json_lines(dir / "out.jsonl")) {
    const auto& body = line.at("response").at("body");
    CHECK(line.at("response").at("status_code") == 200);
    CHECK(line.at("error").is_null());
    CHECK(body.at("usage").at("completion_tokens") ==
          body.at("usage").at("total_tokens").get<int>() -
              body.at("usage").at("prompt_tokens").get<int>());
  }
}

TEST_CASE("run: kill -9 mid-job, then the same command again: every line once, as a clean run") {
  if (!model_installed()) {
    MESSAGE("skipped: the default model is not installed");
    return;
  }
  const TempDir scratch;
  const fs::path& dir = scratch.path();
  std::string input;
  const int requests = 16;
  for (int i = 0; i < requests; ++i)
    input += chat_line(cat("k", i), cat("Count to ", i + 3, "."), 40);
  write_file(dir / "in.jsonl", input);
  const std::string flags =
      " --model smollm2-135m-instruct --progress off --max-sequences 2 "
      "--threads 1 -i " +
      (dir / "in.jsonl").string();

  // The reference: one uninterrupted run.
  REQUIRE(run_conveyor("run" + flags + " -o " + (dir / "clean.jsonl").string()).exit_code == 0);

  // Killed once some lines are out, then resumed.
  const fs::path out = dir / "out.jsonl";
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::freopen("/dev/null", "w", stderr);
    const std::string command =
        "exec " + conveyor::testing::conveyor_binary() + " run" + flags + " -o " + out.string();
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(out) && read_json_lines(out).size() >= 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // While it runs, a second run with the same output is refused and writes nothing.
  const std::size_t lines_before_second = read_json_lines(out).size();
  const CommandOutput second = run_conveyor("run" + flags + " -o " + out.string());
  CHECK(second.exit_code == 1);
  CHECK(second.out.find("another process is writing") != std::string::npos);
  CHECK(read_json_lines(out).size() >= lines_before_second);

  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFSIGNALED(status));
  const std::size_t before = read_json_lines(out).size();
  CHECK(before >= 3);
  CHECK(before < static_cast<std::size_t>(requests));

  const CommandOutput resumed = run_conveyor("run" + flags + " -o " + out.string());
  CHECK(resumed.exit_code == 0);
  CHECK(resumed.out.find(cat("resumed: ", before, " results")) != std::string::npos);
  const auto counts = terminal_counts(out, dir / "out.errors.jsonl");
  CHECK(counts.size() == static_cast<std::size_t>(requests));
  for (const auto& [id, n] : counts) {
    CAPTURE(id);
    CHECK(n == 1);
  }
  CHECK(texts(out) == texts(dir / "clean.jsonl"));
}

TEST_CASE("run: input from a pipe is read once, whole") {
  if (!model_installed()) {
    MESSAGE("skipped: the default model is not installed");
    return;
  }
  const TempDir scratch;
  const fs::path& dir = scratch.path();
  write_file(dir / "in.jsonl", chat_line("p1", "Say hi.", 4) + chat_line("p2", "Say bye.", 4));
  const CommandOutput r = conveyor_piped("cat " + (dir / "in.jsonl").string(),
                                         "run --model smollm2-135m-instruct --progress off -i "
                                         "/dev/stdin -o " +
                                             (dir / "out.jsonl").string());
  CHECK(r.exit_code == 0);
  CHECK(terminal_counts(dir / "out.jsonl", dir / "out.errors.jsonl") ==
        std::map<std::string, int>{{"p1", 1}, {"p2", 1}});
}

TEST_CASE("run: --no-prefix-ordering keeps file order and the same results per custom_id") {
  if (!model_installed()) {
    MESSAGE("skipped: the default model is not installed");
    return;
  }
  const TempDir scratch;
  const fs::path& dir = scratch.path();
  std::string input;
  for (int i = 0; i < 6; ++i) {
    input +=
        chat_line(cat("c", i), i % 2 == 0 ? cat("Count to ", i) : cat("Name a colour, ", i), 4);
  }
  write_file(dir / "in.jsonl", input);
  const std::string io = " --progress off -i " + (dir / "in.jsonl").string() + " -o ";
  const CommandOutput ordered =
      run_conveyor("run --model smollm2-135m-instruct" + io + (dir / "ordered.jsonl").string());
  const CommandOutput plain =
      run_conveyor("run --model smollm2-135m-instruct --no-prefix-ordering" + io +
                   (dir / "plain.jsonl").string());
  CHECK(ordered.exit_code == 0);
  CHECK(plain.exit_code == 0);
  CHECK(texts(dir / "plain.jsonl").size() == 6);
  CHECK(texts(dir / "ordered.jsonl") == texts(dir / "plain.jsonl"));
}

TEST_CASE("run: a K/V cache too small for the batch swaps to host and disk; same outputs") {
  if (!model_installed()) {
    MESSAGE("skipped: the default model is not installed");
    return;
  }
  const TempDir scratch;
  const fs::path& dir = scratch.path();
  fs::create_directory(dir / "nvme");
  std::string input;
  for (int i = 0; i < 12; ++i)
    input += chat_line(cat("s", i), cat("Write a short poem about the number ", i), 32);
  write_file(dir / "in.jsonl", input);
  const std::string io = " --progress off -i " + (dir / "in.jsonl").string() + " -o ";
  const CommandOutput roomy =
      run_conveyor("run --model smollm2-135m-instruct" + io + (dir / "roomy.jsonl").string());
  // 16 blocks of 16 positions for 12 sequences of about 80; a host tier of four
  // blocks (SmolLM2's block of K and V in f32 is 720 KiB), then the disk.
  const CommandOutput tight = run_conveyor(
      "run --model smollm2-135m-instruct --kv-blocks 16 --preemption swap --kv-host-budget "
      "2880KiB --kv-disk-dir " +
      (dir / "nvme").string() + " --kv-disk-budget 64MiB" + io + (dir / "tight.jsonl").string());
  INFO(tight.out);
  REQUIRE(roomy.exit_code == 0);
  REQUIRE(tight.exit_code == 0);
  CHECK(texts(dir / "tight.jsonl").size() == 12);
  CHECK(texts(dir / "tight.jsonl") == texts(dir / "roomy.jsonl"));
  // "(H swapped to host, D to disk)": both tiers were used.
  const std::size_t at = tight.out.find(" swapped to host, ");
  REQUIRE(at != std::string::npos);
  const std::size_t open = tight.out.rfind('(', at);
  const int to_host = std::stoi(tight.out.substr(open + 1));
  const int to_disk = std::stoi(tight.out.substr(at + std::string(" swapped to host, ").size()));
  CHECK(to_host > 0);
  CHECK(to_disk > 0);
  // The disk tier's file goes with the process.
  CHECK(fs::is_empty(dir / "nvme"));
}

TEST_CASE("run: a cut last line (killed mid-write) is removed and that request redone") {
  if (!model_installed()) {
    MESSAGE("skipped: the default model is not installed");
    return;
  }
  const TempDir scratch;
  const fs::path& dir = scratch.path();
  write_file(dir / "in.jsonl", chat_line("a", "Say hi.", 6) + chat_line("b", "Say bye.", 6));
  const std::string command = "run --model smollm2-135m-instruct --progress off -i " +
                              (dir / "in.jsonl").string() + " -o " + (dir / "out.jsonl").string();
  REQUIRE(run_conveyor(command).exit_code == 0);
  // Keep a's line whole and cut b's in the middle, as a kill during the write would.
  std::string kept;
  std::string cut;
  for (const auto& line : read_json_lines(dir / "out.jsonl")) {
    (line.at("custom_id") == "a" ? kept : cut) = line.dump();
  }
  write_file(dir / "out.jsonl", kept + "\n" + cut.substr(0, cut.size() / 2));
  const CommandOutput r = run_conveyor(command);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("a cut last line") != std::string::npos);
  const auto counts = terminal_counts(dir / "out.jsonl", dir / "out.errors.jsonl");
  CHECK(counts == std::map<std::string, int>{{"a", 1}, {"b", 1}});
}

TEST_CASE("run: what cannot run fails with exit 1 and says why") {
  const TempDir scratch;
  const fs::path& dir = scratch.path();
  write_file(dir / "in.jsonl", "{\"prompt\": \"hi\"}\n");
  write_file(dir / "bad.yaml", "scheduler:\n  max_step_tokenz: 4\n");
  const std::string io =
      " -i " + (dir / "in.jsonl").string() + " -o " + (dir / "out.jsonl").string();

  CommandOutput r =
      run_conveyor("run --model smollm2-135m-instruct -c " + (dir / "bad.yaml").string() + io);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("unknown key 'scheduler.max_step_tokenz'") != std::string::npos);

  r = run_conveyor("run --model smollm2-135m-instruct -i " + (dir / "missing.jsonl").string() +
                   " -o " + (dir / "out.jsonl").string());
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("does not exist") != std::string::npos);

  r = run_conveyor("run --model smollm2-135m-instruct --stages 0" + io);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("stages") != std::string::npos);

  if (model_installed()) {
    // The input is not an output file: refusing to append to it keeps it intact.
    r = run_conveyor("run --model smollm2-135m-instruct -i " + (dir / "in.jsonl").string() +
                     " -o " + (dir / "in.jsonl").string());
    CHECK(r.exit_code == 1);
    std::ifstream in(dir / "in.jsonl");
    std::stringstream text;
    text << in.rdbuf();
    CHECK(text.str() == "{\"prompt\": \"hi\"}\n");
  }
}

TEST_CASE("bench: continuous and static batching on a random-weight shape, as JSON") {
  const CommandOutput r =
      run_conveyor("bench --shape tiny --prompts 6 --input-len 8 --output-len 5 --json");
  REQUIRE(r.exit_code == 0);
  const auto json = nlohmann::json::parse(r.out.substr(r.out.find('{')));
  REQUIRE(json.at("runs").size() == 2);
  for (const auto& run : json.at("runs")) {
    CHECK(run.at("output_tokens") == 30);
    CHECK(run.at("output_tokens_per_second").get<double>() > 0);
    CHECK(run.at("steps").get<int>() >= 5);
    // The scheduler's own time between steps: some, and less than the whole run.
    CHECK(run.at("host_mean_seconds").get<double>() > 0);
    CHECK(run.at("host_mean_seconds").get<double>() < run.at("seconds").get<double>());
    // The stage's host time per step: the CPU backend computes on the host, so all of it.
    CHECK(run.at("stage_host_mean_seconds").get<double>() > 0);
    CHECK(run.at("stage_host_mean_seconds").get<double>() < run.at("seconds").get<double>());
  }
  CHECK(json["runs"][0]["mode"] == "continuous");
  CHECK(json["runs"][1]["mode"] == "static");
}

TEST_CASE("bench --temperature: every request samples, seeded, through top-k and top-p") {
  const std::string args =
      "bench --shape tiny --prompts 6 --input-len 8 --output-len 5 --mode continuous --json "
      "--temperature 0.8 --top-k 20 --top-p 0.9";
  const CommandOutput r = run_conveyor(args);
  REQUIRE(r.exit_code == 0);
  const auto json = nlohmann::json::parse(r.out.substr(r.out.find('{')));
  CHECK(json.at("temperature").get<double>() == doctest::Approx(0.8));
  CHECK(json.at("top_k") == 20);
  CHECK(json.at("top_p").get<double>() == doctest::Approx(0.9));
  CHECK(json["runs"][0].at("output_tokens") == 30);
  // A temperature the sampler refuses is refused before any model is built.
  const CommandOutput bad = run_conveyor("bench --shape tiny --prompts 2 --temperature -1");
  CHECK(bad.exit_code != 0);
  CHECK(bad.out.find("temperature") != std::string::npos);
}

TEST_CASE("bench --shared-prefix: prompts share their first tokens, which prefix caching reuses") {
  const std::string args =
      "bench --shape tiny --prompts 12 --input-len 40 --output-len 5 --shared-prefix 32 "
      "--max-step-tokens 64 --mode continuous --json";
  const CommandOutput cached = run_conveyor(args);
  REQUIRE(cached.exit_code == 0);
  const auto with = nlohmann::json::parse(cached.out.substr(cached.out.find('{')));
  CHECK(with.at("shared_prefix") == 32);
  CHECK(with.at("prefix_caching") == true);
  const auto& run = with.at("runs").at(0);
  CHECK(run.at("output_tokens") == 60);
  CHECK(run.at("prompt_tokens") == 480);
  // At most the two full shared blocks of each prompt after the first ones.
  CHECK(run.at("prefix_hit_tokens").get<int>() > 0);
  CHECK(run.at("prefix_hit_tokens").get<int>() <= 11 * 32);

  const CommandOutput uncached = run_conveyor(args + " --no-prefix-caching");
  REQUIRE(uncached.exit_code == 0);
  const auto without = nlohmann::json::parse(uncached.out.substr(uncached.out.find('{')));
  CHECK(without.at("prefix_caching") == false);
  CHECK(without["runs"][0].at("output_tokens") == 60);
  CHECK(without["runs"][0].at("prefix_hit_tokens") == 0);

  // Without the flag, random prompts share nothing to reuse.
  const CommandOutput plain = run_conveyor(
      "bench --shape tiny --prompts 12 --input-len 40 --output-len 5 --mode continuous --json");
  REQUIRE(plain.exit_code == 0);
  const auto none = nlohmann::json::parse(plain.out.substr(plain.out.find('{')));
  CHECK(none["runs"][0].at("prefix_hit_tokens") == 0);
  CHECK(run_conveyor("bench --shape tiny --shared-prefix -1").exit_code != 0);
}

TEST_CASE("bench --kv-dtype fp8 on the CPU says that the FP8 K/V cache needs CUDA") {
  const CommandOutput r = run_conveyor(
      "bench --shape tiny --prompts 2 --input-len 8 --output-len 2 --mode continuous "
      "--backend cpu --kv-dtype fp8");
  CHECK(r.exit_code != 0);
  CHECK(r.out.find("needs the CUDA backend") != std::string::npos);
}

TEST_CASE("coordinator refuses a K/V element type its workers would not use") {
  const CommandOutput r = run_conveyor("coordinator --model absent.gguf --kv-dtype bf16");
  CHECK(r.exit_code != 0);
  CHECK(r.out.find("cluster workers keep f32 K/V") != std::string::npos);
}

// A port nothing listens on now (the kernel's pick for port 0).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  socklen_t length = sizeof(address);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  ::close(fd);
  return ntohs(address.sin_port);
}

// The metrics server's threads start in the full binary, whatever the libraries it
// links reserve per thread (a linked cuBLASLt once made them fail with EINVAL).
TEST_CASE("bench --metrics-port serves the engine's metrics while it runs") {
  const int port = free_port();
  const CommandOutput r = run_conveyor(
      "bench --shape tiny --prompts 4 --input-len 8 --output-len 4 "
      "--mode continuous --metrics-port " +
      std::to_string(port));
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("metrics on http://0.0.0.0:" + std::to_string(port) + "/metrics") !=
        std::string::npos);
  CHECK(r.out.find("cannot listen") == std::string::npos);
}

}  // namespace
