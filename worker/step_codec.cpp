#include "worker/step_codec.h"

#include <string>

#include "common/wire/wire_buffer.h"

namespace conveyor {

namespace {

enum class MessageType : std::uint8_t { kPlan = 1, kOutput = 2 };

void put_header(WireWriter& w, MessageType type) {
  w.put<std::uint32_t>(kStepCodecMagic);
  w.put<std::uint16_t>(kStepCodecVersion);
  w.put<std::uint8_t>(static_cast<std::uint8_t>(type));
}

void read_header(WireReader& r, MessageType type) {
  if (r.get<std::uint32_t>("magic") != kStepCodecMagic) {
    fail(ErrorCode::kMalformed, "wire: not a step message (bad magic)");
  }
  const auto version = r.get<std::uint16_t>("version");
  if (version != kStepCodecVersion) {
    fail(ErrorCode::kUnsupported, "wire: step message version " + std::to_string(version) +
                                      "; this build reads version " +
                                      std::to_string(kStepCodecVersion));
  }
  if (r.get<std::uint8_t>("type") != static_cast<std::uint8_t>(type)) {
    fail(ErrorCode::kMalformed, "wire: unexpected message type");
  }
}

void put_status(WireWriter& w, const Status& status) {
  w.put<std::uint8_t>(static_cast<std::uint8_t>(status.code()));
  // "" rather than a default string_view, whose null data pointer would reach memcpy.
  w.put_string(status.ok() ? std::string_view("") : std::string_view(status.message()));
}

Status read_status(WireReader& r, const char* field) {
  const auto code = r.get<std::uint8_t>(field);
  std::string message = r.get_string(field, kMaxWireMessageBytes);
  if (code > static_cast<std::uint8_t>(ErrorCode::kCancelled)) {
    fail(ErrorCode::kMalformed, std::string("wire: ") + field + " has an unknown error code");
  }
  if (code == 0) return {};
  return Status(static_cast<ErrorCode>(code), std::move(message));
}

void put_params(WireWriter& w, const SamplingParams& p) {
  w.put<float>(p.temperature);
  w.put<std::int32_t>(p.top_k);
  w.put<float>(p.top_p);
  w.put<float>(p.min_p);
  w.put<float>(p.repetition_penalty);
  w.put<float>(p.presence_penalty);
  w.put<float>(p.frequency_penalty);
  w.put_bool(p.seed.has_value());
  w.put<std::uint64_t>(p.seed.value_or(0));
  w.put<std::int32_t>(p.max_tokens);
  w.put_count(p.stop_strings.size());
  for (const std::string& s : p.stop_strings)
    w.put_string(s);
  w.put_array(p.stop_token_ids);
  w.put_bool(p.ignore_eos);
  w.put_bool(p.logprobs);
  w.put<std::int32_t>(p.top_logprobs);
}

SamplingParams read_params(WireReader& r) {
  SamplingParams p;
  p.temperature = r.get<float>("temperature");
  p.top_k = r.get<std::int32_t>("top_k");
  p.top_p = r.get<float>("top_p");
  p.min_p = r.get<float>("min_p");
  p.repetition_penalty = r.get<float>("repetition_penalty");
  p.presence_penalty = r.get<float>("presence_penalty");
  p.frequency_penalty = r.get<float>("frequency_penalty");
  const bool seeded = r.get_bool("seed");
  const auto seed = r.get<std::uint64_t>("seed");
  if (seeded) p.seed = seed;
  p.max_tokens = r.get<std::int32_t>("max_tokens");
  const std::size_t stops = r.get_count("stop_strings", 4, kMaxStopStrings);
  for (std::size_t i = 0; i < stops; ++i)
    p.stop_strings.push_back(r.get_string("stop_strings", kMaxStopStringBytes));
  p.stop_token_ids = r.get_array<std::int32_t>("stop_token_ids", kMaxStopTokenIds);
  p.ignore_eos = r.get_bool("ignore_eos");
  p.logprobs = r.get_bool("logprobs");
  p.top_logprobs = r.get<std::int32_t>("top_logprobs");
  // Values a coordinator would never send: the same checks it applied.
  if (Status s = p.validate(); !s.ok()) {
    fail(ErrorCode::kMalformed, "wire: sampling parameters: " + s.message());
  }
  return p;
}

template <typename T>
Expected<T> decode(std::span<const std::uint8_t> bytes, T (*read)(WireReader&)) {
  try {
    WireReader r(bytes);
    T value = read(r);
    r.expect_end("the message");
    return value;
  } catch (const Error& e) {
    return e.status();
  }
}

StepPlan read_plan(WireReader& r) {
  read_header(r, MessageType::kPlan);
  StepPlan plan;
  plan.step = r.get<std::uint64_t>("step");
  // A sequence takes at least 30 bytes on the wire (ids, start, flags, three counts).
  const std::size_t n = r.get_count("sequences", 30, kMaxWireSequences);
  plan.sequences.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    PlannedSequence s;
    s.id = r.get<std::int64_t>("sequence id");
    s.start = r.get<std::int64_t>("start");
    if (s.start < 0) fail(ErrorCode::kMalformed, "wire: negative start position");
    s.samples = r.get_bool("samples");
    s.tokens = r.get_array<std::int32_t>("tokens", kMaxWireTokens);
    s.block_table = r.get_array<std::int32_t>("block_table", kMaxWireBlocks);
    s.context_before = r.get_array<std::int32_t>("context_before", kMaxWireTokens);
    if (r.get_bool("sampling")) {
      auto sampling = std::make_shared<SequenceSampling>();
      sampling->seed = r.get<std::uint64_t>("sampling seed");
      sampling->prompt_tokens = r.get<std::int64_t>("prompt_tokens");
      sampling->params = read_params(r);
      s.sampling = std::move(sampling);
    }
    plan.sequences.push_back(std::move(s));
  }
  plan.released = r.get_array<std::int64_t>("released", kMaxWireBlocks);
  // A swap takes at least 14 bytes on the wire: id, direction, tier, block count.
  const std::size_t swaps = r.get_count("swaps", 14, kMaxWireSequences);
  plan.swaps.reserve(swaps);
  for (std::size_t i = 0; i < swaps; ++i) {
    KvSwap swap;
    swap.sequence = r.get<std::int64_t>("swap sequence");
    const auto direction = r.get<std::uint8_t>("swap direction");
    if (direction < static_cast<std::uint8_t>(KvSwap::Direction::kOut) ||
        direction > static_cast<std::uint8_t>(KvSwap::Direction::kDrop)) {
      fail(ErrorCode::kMalformed, "wire: unknown swap direction");
    }
    swap.direction = static_cast<KvSwap::Direction>(direction);
    const auto tier = r.get<std::uint8_t>("swap tier");
    if (tier != static_cast<std::uint8_t>(KvTierId::kHost) &&
        tier != static_cast<std::uint8_t>(KvTierId::kDisk)) {
      fail(ErrorCode::kMalformed, "wire: unknown K/V tier");
    }
    swap.tier = static_cast<KvTierId>(tier);
    swap.blocks = r.get_array<std::int32_t>("swap blocks", kMaxWireBlocks);
    plan.swaps.push_back(std::move(swap));
  }
  return plan;
}

StepOutput read_output(WireReader& r) {
  read_header(r, MessageType::kOutput);
  StepOutput out;
  out.step = r.get<std::uint64_t>("step");
  out.status = read_status(r, "status");
  // A sampled token takes at least 26 bytes on the wire.
  const std::size_t n = r.get_count("samples", 26, kMaxWireSequences);
  out.samples.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    SampledToken t;
    t.id = r.get<std::int64_t>("sample id");
    t.sample.token = r.get<std::int32_t>("token");
    t.status = read_status(r, "sample status");
    const bool has_logprob = r.get_bool("logprob");
    const auto logprob = r.get<float>("logprob");
    if (has_logprob) t.sample.logprob = logprob;
    const std::size_t top = r.get_count("top_logprobs", 8, kMaxWireTopLogprobs);
    t.sample.top_logprobs.resize(top);
    for (TokenLogprob& alt : t.sample.top_logprobs) {
      alt.token = r.get<std::int32_t>("top token");
      alt.logprob = r.get<float>("top logprob");
    }
    out.samples.push_back(std::move(t));
  }
  return out;
}

}  // namespace

std::vector<std::uint8_t> encode_step_plan(const StepPlan& plan) {
  WireWriter w;
  put_header(w, MessageType::kPlan);
  w.put<std::uint64_t>(plan.step);
  w.put_count(plan.sequences.size());
  for (const PlannedSequence& s : plan.sequences) {
    w.put<std::int64_t>(s.id);
    w.put<std::int64_t>(s.start);
    w.put_bool(s.samples);
    w.put_array(s.tokens);
    w.put_array(s.block_table);
    w.put_array(s.context_before);
    w.put_bool(s.sampling != nullptr);
    if (s.sampling) {
      w.put<std::uint64_t>(s.sampling->seed);
      w.put<std::int64_t>(s.sampling->prompt_tokens);
      put_params(w, s.sampling->params);
    }
  }
  w.put_array(plan.released);
  w.put_count(plan.swaps.size());
  for (const KvSwap& swap : plan.swaps) {
    w.put<std::int64_t>(swap.sequence);
    w.put<std::uint8_t>(static_cast<std::uint8_t>(swap.direction));
    w.put<std::uint8_t>(static_cast<std::uint8_t>(swap.tier));
    w.put_array(swap.blocks);
  }
  return w.take();
}

Expected<StepPlan> decode_step_plan(std::span<const std::uint8_t> bytes) {
  return decode<StepPlan>(bytes, read_plan);
}

std::vector<std::uint8_t> encode_step_output(const StepOutput& output) {
  WireWriter w;
  put_header(w, MessageType::kOutput);
  w.put<std::uint64_t>(output.step);
  put_status(w, output.status);
  w.put_count(output.samples.size());
  for (const SampledToken& t : output.samples) {
    w.put<std::int64_t>(t.id);
    w.put<std::int32_t>(t.sample.token);
    put_status(w, t.status);
    w.put_bool(t.sample.logprob.has_value());
    w.put<float>(t.sample.logprob.value_or(0.0f));
    w.put_count(t.sample.top_logprobs.size());
    for (const TokenLogprob& alt : t.sample.top_logprobs) {
      w.put<std::int32_t>(alt.token);
      w.put<float>(alt.logprob);
    }
  }
  return w.take();
}

Expected<StepOutput> decode_step_output(std::span<const std::uint8_t> bytes) {
  return decode<StepOutput>(bytes, read_output);
}

}  // namespace conveyor
