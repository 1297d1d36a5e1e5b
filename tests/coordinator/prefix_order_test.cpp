// Prefix-aware ordering of a batch file: the first pass keys each request by the
// prefix-cache hashes of its prompt's first blocks and groups requests that share
// leading blocks; bad lines are answered first, line numbers, ids and the
// first-in-file rule for repeated custom_ids are those of file order; and through a
// whole job the outputs per custom_id do not change while the prefix cache hits more.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/synthetic/model_shapes.h"
#include "common/synthetic/random_model_source.h"
#include "coordinator/batch_job.h"
#include "coordinator/intake.h"
#include "coordinator/local_pipeline.h"
#include "coordinator/prefix_order.h"
#include "coordinator/scheduler/prefix_hash.h"
#include "tests/temp_dir.h"

namespace conveyor {
namespace {

using testing::TempDir;

constexpr std::int64_t kBlock = 16;

std::string write_file(const TempDir& dir, const std::string& name,
                       const std::vector<std::string>& lines) {
  const std::string path = dir.file(name).string();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (const std::string& line : lines)
    out << line << '\n';
  REQUIRE(out.good());
  return path;
}

// A prompt of group `group` (0..2): 64 tokens (4 blocks) that every request of the
// group shares, then `suffix_length` tokens of its own.
std::vector<std::int32_t> group_prompt(int group, int member, int suffix_length = 20) {
  std::vector<std::int32_t> prompt;
  for (int t = 0; t < 64; ++t)
    prompt.push_back(4 + (t * 13 + group * 71) % 240);
  for (int t = 0; t < suffix_length; ++t)
    prompt.push_back(4 + (t * 7 + member * 31 + group * 5) % 240);
  return prompt;
}

std::string prompt_line(const std::string& id, const std::vector<std::int32_t>& prompt,
                        const std::string& extra = "") {
  nlohmann::json ids = prompt;
  std::string line = "{";
  if (!id.empty()) line += "\"custom_id\":\"" + id + "\",";
  return line + "\"prompt\":" + ids.dump() + extra + "}";
}

struct Member {
  int group;
  int member;
};

// 3 groups of 4 requests, interleaved in a fixed shuffle.
std::vector<Member> shuffled_members() {
  std::vector<Member> members;
  for (int g = 0; g < 3; ++g)
    for (int m = 0; m < 4; ++m)
      members.push_back({g, m});
  std::mt19937 rng(5);
  std::shuffle(members.begin(), members.end(), rng);
  return members;
}

std::string member_id(const Member& m) {
  return "g" + std::to_string(m.group) + "-" + std::to_string(m.member);
}

RequestPreparer preparer() {
  IntakeOptions options;
  options.check_model_name = false;
  return RequestPreparer(options, nullptr, std::nullopt);
}

// The group of each request in run order: each group must be one run.
void check_grouped(const std::vector<int>& groups) {
  std::set<int> finished;
  for (std::size_t i = 0; i < groups.size(); ++i) {
    if (i > 0 && groups[i] != groups[i - 1]) finished.insert(groups[i - 1]);
    CHECK_MESSAGE(finished.count(groups[i]) == 0, "group ", groups[i], " is split");
  }
}

TEST_CASE("prompt_block_hashes: chained, one per full block, bounded by max_blocks") {
  const std::vector<std::int32_t> a = group_prompt(0, 0);  // 84 tokens: 5 full blocks
  const std::vector<std::int32_t> b = group_prompt(0, 1);
  const std::vector<std::int32_t> c = group_prompt(1, 0);
  const auto ha = prompt_block_hashes(a, kBlock);
  const auto hb = prompt_block_hashes(b, kBlock);
  const auto hc = prompt_block_hashes(c, kBlock);
  REQUIRE(ha.size() == 5);
  CHECK(std::equal(ha.begin(), ha.begin() + 4, hb.begin()));  // the shared 64 tokens
  CHECK(ha[4] != hb[4]);
  CHECK(ha[0] != hc[0]);
  const auto bounded = prompt_block_hashes(a, kBlock, 2);
  CHECK(bounded == std::vector<BlockHash>(ha.begin(), ha.begin() + 2));
  CHECK(prompt_block_hashes(std::vector<std::int32_t>(15, 7), kBlock).empty());
  CHECK(prompt_block_hashes(a, 0).empty());
}

TEST_CASE("the first pass groups requests sharing a prefix and keeps their lines") {
  TempDir dir;
  const std::vector<Member> members = shuffled_members();
  std::vector<std::string> lines;
  for (const Member& m : members)
    lines.push_back(prompt_line(member_id(m), group_prompt(m.group, m.member)));
  lines.insert(lines.begin() + 5, "");           // blank: not answered
  lines.insert(lines.begin() + 8, "{not json");  // an error between requests
  const std::string path = write_file(dir, "in.jsonl", lines);

  std::unordered_set<std::string> seen;
  std::vector<std::int64_t> error_lines;
  Expected<std::vector<OrderedLine>> order =
      order_by_prefix(path, preparer(), kBlock, seen, {}, [&](JudgedLine& judged) {
        REQUIRE(judged.error.has_value());
        error_lines.push_back(judged.error->line_number);
      });
  REQUIRE(order.ok());
  CHECK(error_lines == std::vector<std::int64_t>{9});
  REQUIRE(order->size() == members.size());

  // Each entry points at its own line of the file, by offset and original number.
  std::ifstream in(path, std::ios::binary);
  const std::string whole((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<int> groups;
  std::set<std::int64_t> numbers;
  for (const OrderedLine& line : *order) {
    const std::string text = whole.substr(line.offset, line.length);
    CHECK(text == lines[static_cast<std::size_t>(line.line_number - 1)]);
    CHECK(line.key.size() == 5);  // 84 tokens: 5 full blocks, under the bound of 16
    numbers.insert(line.line_number);
    groups.push_back(text[text.find("\"g") + 2] - '0');
  }
  CHECK(numbers.size() == members.size());
  check_grouped(groups);
}

TEST_CASE("the ordering key covers at most 16 blocks") {
  TempDir dir;
  std::vector<std::int32_t> longest(40 * kBlock + 3, 9);
  const std::string path = write_file(dir, "long.jsonl", {prompt_line("x", longest)});
  std::unordered_set<std::string> seen;
  auto order = order_by_prefix(path, preparer(), kBlock, seen, {}, [](JudgedLine&) {});
  REQUIRE(order.ok());
  REQUIRE(order->size() == 1);
  CHECK(order->front().key.size() == kPrefixOrderBlocks);
  CHECK(order->front().key == prompt_block_hashes(longest, kBlock, kPrefixOrderBlocks));
}

struct IntakeRun {
  std::vector<EngineRequest> requests;  // in the order sent
  std::vector<RequestError> errors;
  std::size_t requests_before_first_error = 0;
  std::int64_t lines = 0;
  std::int64_t skipped = 0;
  Status status;
};

IntakeRun run_intake(const std::string& path, std::int64_t block_size,
                     std::unordered_set<std::string> finished = {}) {
  IntakeOptions options;
  options.check_model_name = false;
  FileIntake intake(path, options, nullptr, std::nullopt, std::move(finished), block_size);
  Channel<EngineRequest> channel;  // unbounded: the intake never waits
  IntakeRun run;
  bool any_error = false;
  intake.start(channel, [&](RequestError e) {
    if (!any_error) run.requests_before_first_error = channel.size();
    any_error = true;
    run.errors.push_back(std::move(e));
  });
  run.status = intake.join();
  while (auto r = channel.try_receive())
    run.requests.push_back(std::move(*r));
  run.lines = intake.lines();
  run.skipped = intake.skipped();
  return run;
}

TEST_CASE("the intake runs groups together with their original ids, lines and first-in-file ids") {
  TempDir dir;
  const std::vector<Member> members = shuffled_members();
  std::vector<std::string> lines;
  for (const Member& m : members)
    lines.push_back(prompt_line(member_id(m), group_prompt(m.group, m.member)));
  // Line 13: no custom_id, answered as request-13.
  lines.push_back(prompt_line("", group_prompt(1, 9)));
  // Line 14: "dup" first, with group 2's prefix; line 15 repeats it with group 0's,
  // which sorts elsewhere: the first line in the file still keeps the id.
  lines.push_back(prompt_line("dup", group_prompt(2, 7)));
  lines.push_back(prompt_line("dup", group_prompt(0, 7)));
  lines.push_back("{\"custom_id\": 5}");                     // line 16: an error
  lines.push_back(prompt_line("done", group_prompt(0, 8)));  // line 17: finished before
  const std::string path = write_file(dir, "in.jsonl", lines);

  IntakeRun run = run_intake(path, kBlock, {"done"});
  REQUIRE(run.status.ok());
  CHECK(run.skipped == 1);
  CHECK(run.lines == 16);
  REQUIRE(run.requests.size() == 14);
  REQUIRE(run.errors.size() == 2);
  // Bad lines are answered before any request is sent, in file order.
  CHECK(run.requests_before_first_error == 0);
  CHECK(run.errors[0].custom_id == "dup#line-15");
  CHECK(run.errors[0].code == "duplicate_custom_id");
  CHECK(run.errors[0].line_number == 15);
  CHECK(run.errors[1].line_number == 16);

  std::vector<int> groups;
  std::map<std::string, std::int64_t> line_of;
  for (std::size_t i = 0; i < run.requests.size(); ++i) {
    const EngineRequest& r = run.requests[i];
    CHECK(r.key == i);  // keys number the requests in the order sent
    REQUIRE(r.origin != nullptr);
    line_of[r.origin->custom_id] = r.origin->line_number;
    for (int g = 0; g < 3; ++g) {
      if (std::equal(r.prompt.begin(), r.prompt.begin() + 64, group_prompt(g, 0).begin()))
        groups.push_back(g);
    }
  }
  REQUIRE(groups.size() == run.requests.size());
  check_grouped(groups);
  for (std::size_t i = 0; i < members.size(); ++i)
    CHECK(line_of[member_id(members[i])] == static_cast<std::int64_t>(i + 1));
  CHECK(line_of["request-13"] == 13);
  CHECK(line_of["dup"] == 14);
  CHECK(line_of.count("done") == 0);

  // Without ordering (or from a pipe) the same lines come in file order.
  IntakeRun plain = run_intake(path, 0, {"done"});
  REQUIRE(plain.requests.size() == 14);
  CHECK(plain.errors.size() == 2);
  for (std::size_t i = 0; i + 1 < plain.requests.size(); ++i)
    CHECK(plain.requests[i].origin->line_number < plain.requests[i + 1].origin->line_number);
}

TEST_CASE("an empty file, a blank file and a one-line file order fine") {
  TempDir dir;
  for (const auto& lines : std::vector<std::vector<std::string>>{{}, {"", "  "}}) {
    IntakeRun run = run_intake(write_file(dir, "empty.jsonl", lines), kBlock);
    CHECK(run.status.ok());
    CHECK(run.requests.empty());
    CHECK(run.errors.empty());
    CHECK(run.lines == 0);
  }
  IntakeRun one =
      run_intake(write_file(dir, "one.jsonl", {prompt_line("only", {5, 6, 7})}), kBlock);
  REQUIRE(one.status.ok());
  REQUIRE(one.requests.size() == 1);
  CHECK(one.requests[0].origin->custom_id == "only");
  CHECK(one.requests[0].prompt == std::vector<std::int32_t>{5, 6, 7});
  IntakeRun bad = run_intake(write_file(dir, "bad.jsonl", {"[1"}), kBlock);
  CHECK(bad.requests.empty());
  CHECK(bad.errors.size() == 1);
}

TEST_CASE("a pipe is read once, in file order") {
  TempDir dir;
  const std::string path = dir.file("pipe").string();
  REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
  // The line whose key sorts last comes first: ordering would swap them, a pipe keeps them.
  std::vector<std::int32_t> first = group_prompt(0, 0);
  std::vector<std::int32_t> second = group_prompt(1, 0);
  if (prompt_block_hashes(first, kBlock) < prompt_block_hashes(second, kBlock)) {
    std::swap(first, second);
  }
  std::thread writer([&] {
    std::ofstream out(path, std::ios::binary);
    out << prompt_line("b", first) << '\n' << prompt_line("a", second);
  });
  IntakeRun run = run_intake(path, kBlock);
  writer.join();
  REQUIRE(run.status.ok());
  REQUIRE(run.requests.size() == 2);
  CHECK(run.requests[0].origin->custom_id == "b");
  CHECK(run.requests[1].origin->custom_id == "a");
}

TEST_CASE("a missing input is an I/O error with ordering too") {
  TempDir dir;
  // Not a regular file: the intake falls back to reading in order, which reports it.
  IntakeRun run = run_intake(dir.file("absent.jsonl").string(), kBlock);
  CHECK(run.status.code() == ErrorCode::kIo);
}

// ---- a whole job ----

std::unique_ptr<ModelSource> tiny_model() {
  Expected<ModelShape> shape = model_shape("tiny");
  REQUIRE(shape.ok());
  RandomModelOptions options;
  options.dtype = DType::kF32;
  options.seed = 11;
  options.max_positions = 512;
  options.threads = 2;
  return make_random_model(*shape, options);
}

struct JobRun {
  std::map<std::string, nlohmann::json> choices;  // per custom_id
  BatchJobSummary summary;
};

JobRun run_job(const ModelSource& source, const std::string& input, const TempDir& dir,
               const std::string& name, std::int64_t order_block_size) {
  const std::int64_t blocks = 12;  // two sequences of 6 blocks: no room to cache more
  LocalPipelineOptions pipeline_options;
  pipeline_options.backend.threads = 2;
  pipeline_options.kv = {blocks, kBlock};
  LocalPipeline pipeline(source, pipeline_options);
  SchedulerActorOptions actor;
  actor.scheduler.num_blocks = blocks;
  actor.scheduler.block_size = kBlock;
  actor.scheduler.max_sequences = 2;
  actor.scheduler.max_step_tokens = 64;
  actor.scheduler.prefix_caching = true;
  actor.vocab_size = source.spec().vocab_size;
  actor.context_limit = blocks * kBlock;
  SchedulerActor scheduler(pipeline, actor);

  BatchJobOptions job;
  job.input = input;
  job.output = dir.file(name + ".jsonl");
  job.errors = dir.file(name + ".errors.jsonl");
  job.intake.check_model_name = false;
  job.meta.model = "tiny";
  job.progress = ProgressMode::kOff;
  job.prefix_order_block_size = order_block_size;
  JobRun run;
  run.summary = run_batch_job(scheduler, job, nullptr, std::nullopt);
  std::ifstream out(job.output);
  for (std::string line; std::getline(out, line);) {
    const nlohmann::json result = nlohmann::json::parse(line);
    const std::string id = result.at("custom_id");
    CHECK(run.choices.count(id) == 0);  // one line per custom_id
    run.choices[id] = result.at("response").at("body").at("choices");
  }
  return run;
}

TEST_CASE("a job ordered by prefix writes the same results and hits the prefix cache more") {
  auto source = tiny_model();
  TempDir dir;
  // 3 groups of 6 requests, interleaved: in file order a group's prefix blocks are
  // evicted before its next request comes.
  std::vector<std::string> lines;
  for (int m = 0; m < 6; ++m) {
    for (int g = 0; g < 3; ++g) {
      lines.push_back(prompt_line(member_id({g, m}), group_prompt(g, m, 16),
                                  ",\"max_tokens\":4,\"temperature\":0,\"logprobs\":1"));
    }
  }
  lines.push_back("{broken");
  const std::string input = write_file(dir, "in.jsonl", lines);

  const JobRun ordered = run_job(*source, input, dir, "ordered", kBlock);
  const JobRun plain = run_job(*source, input, dir, "plain", 0);
  MESSAGE("prefix hit tokens: ordered ", ordered.summary.engine.prefix_hit_tokens, ", file order ",
          plain.summary.engine.prefix_hit_tokens);
  CHECK(ordered.summary.results == 18);
  CHECK(ordered.summary.errors == 1);
  CHECK(plain.summary.results == 18);
  REQUIRE(ordered.choices.size() == 18);
  CHECK(ordered.choices == plain.choices);
  CHECK(ordered.summary.engine.prefix_hit_tokens > plain.summary.engine.prefix_hit_tokens);
}

}  // namespace
}  // namespace conveyor
