// A cluster on loopback for one test: a scratch directory with the config, a
// coordinator on two free ports with its journal, named workers, and producers run
// as `conveyor submit`; plus the single-process reference (`conveyor run`) that the
// cluster's outputs are compared with. Every process is a ChildProcess, ended with the
// test.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/cli/conveyor_process.h"
#include "tests/cluster/batch_files.h"
#include "tests/cluster/cluster_harness.h"
#include "tests/temp_dir.h"

namespace conveyor::testing {

// Generous bounds: reached only when something is broken.
inline constexpr std::chrono::seconds kStartTimeout{60};
inline constexpr std::chrono::seconds kJobTimeout{150};

// Timings for tests: a dead worker is noticed within seconds, plans follow quickly.
// The liveness period stays well above the second a worker takes to load a whole
// SmolLM2 stage on a loaded machine, because a worker sends no heartbeat while it loads.
inline constexpr const char* kFastClusterSettings =
    "  heartbeat_seconds: 0.3\n"
    "  liveness_seconds: 3.0\n"
    "  plan_delay_seconds: 0.3\n";

// True (with a message) when the default model is absent: the test then skips.
inline bool skip_without_model() {
  if (model_installed()) return false;
  MESSAGE("skipped: the default model is not installed (scripts/install-model.sh)");
  return true;
}

struct SubmitRun {
  int exit_code = -1;
  std::string job_id;  // the first line submit prints
  std::string log;     // stdout and stderr
};

class TestCluster {
 public:
  // `settings`: more lines of the config's `cluster:` section, each indented two
  // spaces (e.g. "  stages: 2\n"); `timings` the heartbeat, liveness and plan delay;
  // `model` the config's model (an alias or a path).
  explicit TestCluster(const std::string& settings,
                       const std::string& timings = kFastClusterSettings,
                       const std::string& model = kModel)
      : producer_port_(free_port()), worker_port_(free_port()), timings_(timings), model_(model) {
    write_config(settings);
  }

  const TempDir& dir() const { return dir_; }
  std::filesystem::path file(const std::string& name) const { return dir_.file(name); }
  std::filesystem::path config() const { return dir_.file("cluster.yaml"); }
  std::filesystem::path journal() const { return dir_.file("journal"); }
  std::string producer_endpoint() const {
    return "tcp://127.0.0.1:" + std::to_string(producer_port_);
  }
  std::string worker_endpoint() const { return "tcp://127.0.0.1:" + std::to_string(worker_port_); }
  int worker_port() const { return worker_port_; }

  // Rewrites the config (before the coordinator starts, or before a restart).
  void write_config(const std::string& settings) const {
    std::ofstream out(config(), std::ios::trunc);
    out << "model: " << model_ << "\ncluster:\n" << timings_ << settings;
    REQUIRE(out.good());
  }

  // `conveyor coordinator` on this cluster's ports and journal; `worker_listen`
  // overrides the worker endpoint it binds. A running coordinator is replaced (killed
  // first); each start has its own log, coordinator-<n>.log.
  ChildProcess& start_coordinator(const std::vector<std::string>& extra = {},
                                  const std::string& worker_listen = "") {
    ++coordinator_starts_;
    std::vector<std::string> argv = {
        conveyor_binary(), "coordinator",
        "--config",        config().string(),
        "--listen",        producer_endpoint(),
        "--worker-listen", worker_listen.empty() ? worker_endpoint() : worker_listen,
        "--journal",       journal().string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    coordinator_.reset();
    coordinator_ = std::make_unique<ChildProcess>(
        argv, dir_.file("coordinator-" + std::to_string(coordinator_starts_) + ".log"));
    return *coordinator_;
  }

  ChildProcess& coordinator() {
    REQUIRE(coordinator_ != nullptr);
    return *coordinator_;
  }

  // `conveyor worker --name NAME` with one thread and 2 GiB, connecting to this
  // cluster's worker endpoint unless `extra` names another. `prefix` goes in front of
  // the command line (e.g. `ip netns exec NS`).
  ChildProcess& start_worker(const std::string& name, const std::vector<std::string>& extra = {},
                             const std::vector<std::string>& prefix = {}) {
    std::vector<std::string> argv = prefix;
    const std::vector<std::string> command = {conveyor_binary(), "worker", "--threads", "1",
                                              "--memory",        "2GiB",   "--name",    name};
    argv.insert(argv.end(), command.begin(), command.end());
    bool has_coordinator = false;
    for (const std::string& a : extra)
      has_coordinator = has_coordinator || a == "--coordinator";
    if (!has_coordinator) {
      argv.push_back("--coordinator");
      argv.push_back(worker_endpoint());
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    workers_[name] = std::make_unique<ChildProcess>(argv, dir_.file(name + ".log"));
    return *workers_[name];
  }

  ChildProcess& worker(const std::string& name) {
    REQUIRE_MESSAGE(workers_.count(name) == 1, "no worker ", name);
    return *workers_.at(name);
  }

  // Waits until the coordinator has seen each of `names` join.
  void wait_for_workers(const std::vector<std::string>& names) {
    for (const std::string& name : names) {
      REQUIRE_MESSAGE(coordinator().wait_for_log("worker " + name + " joined", kStartTimeout),
                      "worker ", name, " never joined");
    }
  }

  // `conveyor submit --coordinator <producers> ARGS`, started; its log is `log_name`.
  std::unique_ptr<ChildProcess> start_submit(const std::vector<std::string>& args,
                                             const std::string& log_name) {
    std::vector<std::string> argv = {conveyor_binary(), "submit", "--coordinator",
                                     producer_endpoint()};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<ChildProcess>(argv, dir_.file(log_name));
  }

  // The same, run to its end (failing the test past `timeout`).
  SubmitRun submit(const std::vector<std::string>& args, const std::string& log_name,
                   std::chrono::milliseconds timeout = kJobTimeout) {
    std::unique_ptr<ChildProcess> process = start_submit(args, log_name);
    return finish_submit(*process, timeout);
  }

  static SubmitRun finish_submit(ChildProcess& process, std::chrono::milliseconds timeout) {
    SubmitRun run;
    const std::optional<int> code = process.wait_for_exit(timeout);
    run.log = process.log();
    REQUIRE_MESSAGE(code.has_value(), process.command(), " did not finish:\n", run.log);
    run.exit_code = *code;
    run.job_id = run.log.substr(0, run.log.find('\n'));
    return run;
  }

  // Every log of the cluster, for failure messages.
  std::string logs() const {
    std::string all;
    std::error_code ec;
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir_.path(), ec))
      if (entry.path().extension() == ".log") files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const std::filesystem::path& f : files)
      all += "==== " + f.filename().string() + "\n" + read_text_file(f);
    return all;
  }

 private:
  TempDir dir_;
  int producer_port_;
  int worker_port_;
  std::string timings_;
  std::string model_;
  int coordinator_starts_ = 0;
  std::unique_ptr<ChildProcess> coordinator_;
  std::map<std::string, std::unique_ptr<ChildProcess>> workers_;
};

// The messages of a process's log, one per line: a JSON line's "msg", any other line
// (text format, or what the process printed itself) as it is.
inline std::string log_messages(const std::string& log) {
  std::istringstream lines(log);
  std::string messages;
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.front() == '{') {
      const nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
      if (record.is_object() && record.contains("msg") && record["msg"].is_string())
        line = record["msg"].get<std::string>();
    }
    messages += line + "\n";
  }
  return messages;
}

// A replica as a coordinator log announces it: "replica 3 live: w2 [0-14] -> w1 [15-29]".
struct LiveReplica {
  int epoch = 0;
  std::vector<std::string> workers;  // first stage first
};

inline std::vector<LiveReplica> live_replicas(const std::string& coordinator_log) {
  std::vector<LiveReplica> replicas;
  std::istringstream lines(log_messages(coordinator_log));
  std::string line;
  const std::string marker = "replica ";
  while (std::getline(lines, line)) {
    if (line.rfind(marker, 0) != 0) continue;
    const std::size_t live = line.find(" live: ");
    if (live == std::string::npos) continue;
    LiveReplica r;
    r.epoch = std::stoi(line.substr(marker.size(), live - marker.size()));
    std::istringstream layout(line.substr(live + 7));
    std::string word;
    while (layout >> word)
      if (word != "->" && word.front() != '[') r.workers.push_back(word);
    replicas.push_back(r);
  }
  return replicas;
}

// What `conveyor run` answers for an input: the reference for the cluster.
struct Reference {
  std::map<std::string, std::string> answers;  // custom_id -> answer_of(line)
  std::set<std::string> error_ids;             // custom_ids of the error lines
};

// Runs `conveyor run` on `input` once per distinct input content (several tests share
// an input) and keeps the answers for the rest of the test binary.
inline const Reference& reference_for(const std::filesystem::path& input) {
  static TempDir dir;
  static std::map<std::string, Reference> by_content;
  const std::string content = read_text_file(input);
  auto it = by_content.find(content);
  if (it != by_content.end()) return it->second;
  const std::string name = "reference-" + std::to_string(by_content.size());
  const std::filesystem::path output = dir.file(name + ".jsonl");
  const std::filesystem::path errors = dir.file(name + ".errors.jsonl");
  ChildProcess run({conveyor_binary(), "run", "--model", kModel, "--input", input.string(),
                    "--output", output.string(), "--errors", errors.string(), "--progress", "off"},
                   dir.file(name + ".log"));
  const std::optional<int> code = run.wait_for_exit(kJobTimeout);
  REQUIRE_MESSAGE(code.has_value(), "conveyor run did not finish:\n", run.log());
  REQUIRE_MESSAGE((*code == 0 || *code == 2), "conveyor run failed:\n", run.log());
  Reference reference;
  reference.answers = answers_by_custom_id(output);
  reference.error_ids = custom_ids_of(errors);
  return by_content.emplace(content, std::move(reference)).first->second;
}

// Checks that `output` answers exactly what the reference answers, each custom_id
// once, and that `errors` (when given) has the reference's error lines.
inline void check_matches_reference(const std::filesystem::path& input,
                                    const std::filesystem::path& output,
                                    const std::filesystem::path& errors = {}) {
  const Reference& reference = reference_for(input);
  const std::map<std::string, std::string> answers = answers_by_custom_id(output);
  CHECK(answers.size() == reference.answers.size());
  for (const auto& [id, answer] : reference.answers) {
    const auto it = answers.find(id);
    if (it == answers.end()) {
      FAIL_CHECK("no output line for ", id);
      continue;
    }
    CHECK_MESSAGE(it->second == answer, "different answer for ", id);
  }
  if (!errors.empty()) CHECK(custom_ids_of(errors) == reference.error_ids);
}

}  // namespace conveyor::testing
