// Writes seed inputs for control_message_fuzz: one encoding of every control message,
// with the values a real cluster sends (a registration, a welcome, an assignment, a
// step carrying an encoded plan, a step result carrying an encoded output, ...), so the
// fuzzer starts past the header and the checks on values.
// Usage: control_message_seeds DIR. scripts/fuzz.sh runs it into each run's corpus, so
// the seeds follow the codec when its format changes.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "worker/node/control_codec.h"
#include "worker/step_codec.h"

namespace {

using namespace conveyor;

std::vector<std::uint8_t> plan_bytes() {
  StepPlan plan;
  plan.step = 12;
  PlannedSequence s;
  s.id = 4;
  s.start = 6;
  s.tokens = {319};
  s.block_table = {0, 3};
  s.samples = true;
  auto sampling = std::make_shared<SequenceSampling>();
  sampling->seed = 77;
  sampling->prompt_tokens = 6;
  sampling->params.max_tokens = 64;
  sampling->params.temperature = 0.8f;
  sampling->params.stop_strings = {"\n\n"};
  s.sampling = sampling;
  plan.sequences.push_back(s);
  plan.released = {2};
  return encode_step_plan(plan);
}

std::vector<std::uint8_t> output_bytes() {
  StepOutput out;
  out.step = 12;
  SampledToken token;
  token.id = 4;
  token.sample.token = 1023;
  token.sample.logprob = -0.75f;
  token.sample.top_logprobs = {{1023, -0.75f}, {5, -1.5f}};
  out.samples.push_back(token);
  return encode_step_output(out);
}

RegisterMessage registration() {
  RegisterMessage m;
  m.worker_id = "node7-4242";
  m.incarnation = 0x9e3779b97f4a7c15ull;
  m.backend = "cuda";
  m.device = "cuda:0";
  m.memory_bytes = 80ull << 30;
  m.speed = 1.25;
  m.host = "10.0.0.7";
  return m;
}

AssignMessage assignment() {
  AssignMessage m;
  m.epoch = 3;
  m.model = "models/llama-3-8b.gguf";
  m.layer_begin = 16;
  m.layer_end = 32;
  m.stage = 1;
  m.stages = 2;
  m.kv_blocks = 4096;
  m.block_size = 16;
  return m;
}

bool write(const std::filesystem::path& dir, const ControlMessage& message) {
  const std::vector<std::uint8_t> bytes = encode_control(message);
  std::ofstream file(dir / control_message_name(message), std::ios::binary | std::ios::trunc);
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
  // One seed per alternative, named after it.
  const std::vector<ControlMessage> messages = {
      registration(),
      WorkerHeartbeatMessage{0x9e3779b97f4a7c15ull, 3, 1200},
      StageReadyMessage{3, "10.0.0.7:41000", "ucx"},
      LinkedMessage{3},
      StageFailedMessage{3, "out of memory loading layer 20"},
      StepResultMessage{3, output_bytes()},
      LeavingMessage{"draining"},
      WelcomeMessage{500, 3000, 0x0123456789abcdefull},
      assignment(),
      LinkMessage{3, "10.0.0.8:41000"},
      StepMessage{3, plan_bytes()},
      ReleaseMessage{2},
      CoordinatorHeartbeatMessage{0x0123456789abcdefull},
      ShutdownMessage{},
  };
  for (const ControlMessage& message : messages) {
    if (!write(dir, message)) {
      std::fprintf(stderr, "cannot write seeds to %s\n", dir.c_str());
      return 1;
    }
  }
  return 0;
}
