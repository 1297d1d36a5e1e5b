#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/device_options.h"
#include "cli/model_loading.h"
#include "common/channel.h"
#include "common/config/device_budget.h"
#include "common/tokenizer/chat_encoding.h"
#include "common/tokenizer/chat_template.h"
#include "common/tokenizer/tokenizer.h"
#include "coordinator/local_pipeline.h"
#include "coordinator/scheduler_actor.h"
#include "worker/platform/backend_factory.h"

namespace conveyor::cli {
namespace {

struct GenerateOptions {
  std::string model;
  std::optional<std::string> prompt;
  std::optional<std::string> prompt_ids;
  std::string system;
  bool raw = false;
  bool print_ids = false;
  bool quiet = false;
  DeviceOptions device;
  std::string weight_device_budget = "0";
  SamplingParams sampling;
  std::optional<std::string> seed;
  std::int32_t logprobs = -1;  // < 0: none
};

std::vector<std::int32_t> parse_ids(const std::string& text) {
  std::vector<std::int32_t> ids;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    std::size_t used = 0;
    long long value = 0;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || value < 0 || value > INT32_MAX) {
      fail(ErrorCode::kInvalidArgument, "--prompt-ids: '" + item + "' is not a token id");
    }
    ids.push_back(static_cast<std::int32_t>(value));
  }
  if (ids.empty()) fail(ErrorCode::kInvalidArgument, "--prompt-ids is empty");
  return ids;
}

template <typename T>
T value_or_throw(Expected<T> expected) {
  if (!expected.ok()) throw Error(expected.status().code(), expected.status().message());
  return std::move(expected).value();
}

std::vector<std::int32_t> prompt_tokens(const GenerateOptions& o, const ModelSource& source,
                                        const Tokenizer* tokenizer) {
  if (o.prompt_ids) return parse_ids(*o.prompt_ids);
  if (tokenizer == nullptr) {
    fail(ErrorCode::kInvalidArgument,
         "this model has no tokenizer: give the prompt as token ids with --prompt-ids");
  }
  if (o.raw) return tokenizer->encode(*o.prompt, /*add_special=*/true, /*parse_special=*/false);
  std::vector<ChatMessage> messages;
  if (!o.system.empty()) messages.push_back({"system", o.system});
  messages.push_back({"user", *o.prompt});
  const ChatTemplate chat = value_or_throw(chat_template_for(*source.tokenizer()));
  // Turn markers become special tokens; the user's text stays text even where it
  // spells a special one ("<|im_end|>"), so a prompt cannot open a turn of its own.
  return value_or_throw(encode_chat(*tokenizer, chat, messages, /*add_generation_prompt=*/true));
}

// A seed is any 64-bit unsigned value; anything else is refused rather than clamped.
std::uint64_t parse_seed(const std::string& text) {
  std::uint64_t seed = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seed);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
    fail(ErrorCode::kInvalidArgument,
         "--seed: '" + text + "' is not an integer from 0 to 18446744073709551615");
  }
  return seed;
}

std::string token_label(std::int32_t id, const Tokenizer* tokenizer) {
  if (tokenizer == nullptr) return std::to_string(id);
  return std::to_string(id) + " " + nlohmann::json(tokenizer->decode(std::span(&id, 1))).dump();
}

// One line per generated token on stderr: its log-probability and the most likely
// alternatives, so that the text on stdout stays clean.
void print_logprobs(const EngineChoice& choice, const Tokenizer* tokenizer) {
  for (std::size_t i = 0; i < choice.logprobs.size(); ++i) {
    const SampleResult& s = choice.logprobs[i];
    std::fprintf(stderr, "[logprobs] %zu: %s %.4f |", i, token_label(s.token, tokenizer).c_str(),
                 static_cast<double>(s.logprob.value_or(0.0f)));
    for (const TokenLogprob& alt : s.top_logprobs) {
      std::fprintf(stderr, " %s %.4f", token_label(alt.token, tokenizer).c_str(),
                   static_cast<double>(alt.logprob));
    }
    std::fprintf(stderr, "\n");
  }
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int run_generate(const GenerateOptions& o) {
  if (o.prompt.has_value() == o.prompt_ids.has_value()) {
    fail(ErrorCode::kInvalidArgument, "give exactly one of --prompt and --prompt-ids");
  }
  const auto source = open_model_or_throw(o.model);
  const ModelSpec& spec = source->spec();
  std::shared_ptr<const Tokenizer> tokenizer;
  if (source->tokenizer().has_value())
    tokenizer = std::make_shared<Tokenizer>(*source->tokenizer());

  EngineRequest request;
  request.prompt = prompt_tokens(o, *source, tokenizer.get());
  request.sampling = o.sampling;
  if (o.logprobs >= 0) {
    request.sampling.logprobs = true;
    request.sampling.top_logprobs = o.logprobs;
  }
  if (o.seed) request.sampling.seed = parse_seed(*o.seed);
  // Checked before the weights load, so that a typo costs no loading time; the engine
  // checks the rest (the prompt's ids, its length).
  if (Status s = request.sampling.validate(spec.vocab_size); !s.ok())
    throw Error(s.code(), s.message());
  const Expected<DeviceBudget> budget = parse_device_budget(o.weight_device_budget);
  if (!budget.ok()) {
    throw Error(budget.status().code(), "--weight-device-budget: " + budget.status().message());
  }

  // One sequence: the KV cache holds exactly the longest it can grow to.
  KvGeometry kv;
  std::int64_t longest =
      static_cast<std::int64_t>(request.prompt.size()) + request.sampling.max_tokens;
  if (spec.max_positions > 0) longest = std::min(longest, spec.max_positions);
  kv.num_blocks = (longest + kv.block_size - 1) / kv.block_size;

  LocalPipelineOptions pipeline_options;
  pipeline_options.stages = 1;
  pipeline_options.backend = o.device.request();
  pipeline_options.kv = kv;
  pipeline_options.weight_budget = {budget->bytes, budget->fraction};
  const auto load_start = std::chrono::steady_clock::now();
  LocalPipeline pipeline(*source, pipeline_options);
  const double load_seconds = seconds_since(load_start);

  SchedulerActorOptions options;
  options.scheduler.num_blocks = kv.num_blocks;
  options.scheduler.block_size = kv.block_size;
  options.vocab_size = spec.vocab_size;
  options.context_limit = spec.max_positions;
  options.eos_ids = spec.eos_token_ids;
  options.tokenizer = tokenizer;
  SchedulerActor engine(pipeline, options);

  // Without a tokenizer there is no text: the ids are the output.
  const bool print_ids = o.print_ids || tokenizer == nullptr;
  const bool stream = !print_ids;
  // Timed from here, so that the first token's time leaves out loading.
  request.submitted = SteadyClock::now();
  Channel<EngineRequest> requests;
  requests.send(std::move(request));
  requests.close();
  std::optional<EngineResult> finished;
  engine.run(
      requests, [&](EngineResult r) { finished = std::move(r); }, {},
      [&](std::uint64_t, std::int32_t, std::string_view text) {
        if (!stream) return;
        std::cout << text;
        std::cout.flush();
      });
  if (!finished) fail(ErrorCode::kInternal, "the engine returned no result");
  const EngineResult& result = *finished;
  if (!result.status.ok()) throw Error(result.status.code(), result.status.message());
  const EngineChoice& choice = result.choices.front();
  if (print_ids) {
    for (std::size_t i = 0; i < choice.tokens.size(); ++i) {
      std::cout << (i ? "," : "") << choice.tokens[i];
    }
  }
  std::cout << std::endl;  // the answer is complete before anything else on stderr
  if (o.logprobs >= 0) print_logprobs(choice, tokenizer.get());

  if (!o.quiet) {
    const auto generated = static_cast<std::int64_t>(choice.tokens.size());
    // The first token pays for the prompt; the rest are the decode rate.
    const double decode_seconds = result.latency_seconds - result.first_token_seconds;
    const std::int64_t decode_tokens = generated - 1;
    std::fprintf(stderr,
                 "[generate] %s | load %.2f s | prompt %lld tokens, first token %.3f s | "
                 "%lld tokens in %.2f s: %.1f tok/s decode | finish: %s\n",
                 pipeline.backend_name().c_str(), load_seconds,
                 static_cast<long long>(result.prompt_tokens), result.first_token_seconds,
                 static_cast<long long>(generated), result.latency_seconds,
                 decode_seconds > 0 && decode_tokens > 0
                     ? static_cast<double>(decode_tokens) / decode_seconds
                     : 0.0,
                 std::string(to_string(choice.finish_reason)).c_str());
  }
  return 0;
}

}  // namespace

void register_generate(CLI::App& app, CommandResult& result) {
  CLI::App* cmd = app.add_subcommand("generate", "Generate a continuation of one prompt");
  auto o = std::make_shared<GenerateOptions>();
  o->sampling.max_tokens = 256;
  cmd->add_option("-m,--model", o->model, "alias, GGUF file or Hugging Face directory")
      ->required()
      ->envname("CONVEYOR_MODEL");
  cmd->add_option("-p,--prompt", o->prompt, "the user message (chat template applied)");
  cmd->add_option("--prompt-ids", o->prompt_ids, "the prompt as comma-separated token ids");
  cmd->add_option("--system", o->system, "a system message");
  cmd->add_flag("--raw", o->raw, "tokenize the prompt as is, without the chat template");
  cmd->add_flag("--print-ids", o->print_ids, "print the generated token ids instead of text");
  cmd->add_flag("-q,--quiet", o->quiet, "no statistics on stderr");
  o->device.add_to(*cmd);
  cmd->add_option("--weight-device-budget", o->weight_device_budget,
                  "memory for the weights, e.g. 512MiB or 50%; the layers beyond it stream in "
                  "from the model file (default: 0, all resident)");
  cmd->add_option("-n,--max-tokens", o->sampling.max_tokens, "tokens to generate at most")
      ->capture_default_str();
  cmd->add_option("--temperature", o->sampling.temperature, "0: greedy")->capture_default_str();
  cmd->add_option("--top-k", o->sampling.top_k, "0: off")->capture_default_str();
  cmd->add_option("--top-p", o->sampling.top_p, "1: off")->capture_default_str();
  cmd->add_option("--min-p", o->sampling.min_p, "0: off")->capture_default_str();
  cmd->add_option("--repetition-penalty", o->sampling.repetition_penalty, "1: off");
  cmd->add_option("--presence-penalty", o->sampling.presence_penalty, "0: off");
  cmd->add_option("--frequency-penalty", o->sampling.frequency_penalty, "0: off");
  cmd->add_option("--seed", o->seed, "same seed, same output (0 to 2^64-1)");
  cmd->add_option("--stop", o->sampling.stop_strings, "stop string (repeatable)");
  cmd->add_option("--logprobs", o->logprobs,
                  "print each token's log-probability and this many alternatives (stderr)");
  cmd->add_flag("--ignore-eos", o->sampling.ignore_eos, "continue past end-of-sequence tokens");
  cmd->callback([&result, o] { result = [o] { return run_generate(*o); }; });
}

}  // namespace conveyor::cli
