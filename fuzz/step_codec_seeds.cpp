// Writes seed inputs for step_codec_fuzz: encoded StepPlans and StepOutputs of the
// shapes real steps have (prefill chunks, decode steps, sampling parameters, failed
// samples), so the fuzzer starts from messages that pass the header and the counts.
// Usage: step_codec_seeds DIR. scripts/fuzz.sh runs it into each run's corpus, so the
// seeds follow the codec when its format changes.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "worker/step_codec.h"

namespace {

using namespace conveyor;

std::shared_ptr<const SequenceSampling> sampling(bool rich) {
  auto s = std::make_shared<SequenceSampling>();
  s->seed = 1234;
  s->prompt_tokens = 5;
  s->params.max_tokens = 32;
  if (rich) {
    s->params.temperature = 0.7f;
    s->params.top_k = 40;
    s->params.top_p = 0.9f;
    s->params.min_p = 0.05f;
    s->params.repetition_penalty = 1.1f;
    s->params.presence_penalty = 0.5f;
    s->params.frequency_penalty = 0.25f;
    s->params.seed = 42;
    s->params.stop_strings = {"\n\n", "END"};
    s->params.stop_token_ids = {2, 128009};
    s->params.logprobs = true;
    s->params.top_logprobs = 3;
  }
  return s;
}

StepPlan prefill_plan() {
  StepPlan plan;
  plan.step = 1;
  PlannedSequence s;
  s.id = 10;
  s.tokens = {1, 15043, 29892, 920, 526};
  s.block_table = {0, 1};
  s.samples = true;
  s.sampling = sampling(true);
  plan.sequences.push_back(s);
  return plan;
}

StepPlan decode_plan() {
  StepPlan plan;
  plan.step = 9;
  for (std::int64_t id = 10; id < 13; ++id) {
    PlannedSequence s;
    s.id = id;
    s.start = 5 + id;
    s.tokens = {static_cast<std::int32_t>(300 + id)};
    s.block_table = {static_cast<std::int32_t>(id), static_cast<std::int32_t>(id + 3)};
    s.samples = true;
    s.sampling = sampling(id == 11);
    if (id == 12) s.context_before = {1, 2, 3};
    plan.sequences.push_back(s);
  }
  plan.released = {7, 8};
  return plan;
}

StepPlan chunked_plan() {
  StepPlan plan;
  plan.step = 4;
  PlannedSequence s;
  s.id = 3;
  s.start = 16;
  s.tokens = std::vector<std::int32_t>(16, 42);
  s.block_table = {4, 5, 6};
  s.samples = false;  // a chunk in the middle of a prompt: nothing to sample yet
  plan.sequences.push_back(s);
  return plan;
}

StepOutput sampled_output() {
  StepOutput out;
  out.step = 9;
  SampledToken a;
  a.id = 10;
  a.sample.token = 311;
  a.sample.logprob = -0.5f;
  a.sample.top_logprobs = {{311, -0.5f}, {12, -1.25f}, {99, -3.0f}};
  SampledToken b;
  b.id = 11;
  b.sample.token = 2;
  SampledToken c;
  c.id = 12;
  c.status = Status(ErrorCode::kInternal, "sampling: no finite logit");
  out.samples = {a, b, c};
  return out;
}

StepOutput failed_output() {
  StepOutput out;
  out.step = 10;
  out.status = Status(ErrorCode::kUnavailable, "stage 1 lost");
  return out;
}

bool write(const std::filesystem::path& dir, const char* name,
           const std::vector<std::uint8_t>& bytes) {
  std::ofstream file(dir / name, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(file);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir(argv[1]);
  std::filesystem::create_directories(dir);
  const bool ok = write(dir, "plan_empty", encode_step_plan(StepPlan{})) &&
                  write(dir, "plan_prefill", encode_step_plan(prefill_plan())) &&
                  write(dir, "plan_decode", encode_step_plan(decode_plan())) &&
                  write(dir, "plan_chunk", encode_step_plan(chunked_plan())) &&
                  write(dir, "output_empty", encode_step_output(StepOutput{})) &&
                  write(dir, "output_sampled", encode_step_output(sampled_output())) &&
                  write(dir, "output_failed", encode_step_output(failed_output()));
  if (!ok) {
    std::fprintf(stderr, "cannot write seeds to %s\n", dir.c_str());
    return 1;
  }
  return 0;
}
