// The control messages' binary form: every alternative decodes to the values it was
// encoded from, and truncated, corrupted, forged or out-of-range bytes are refused
// (kMalformed, kUnsupported for another version) without a crash and without an
// allocation the message does not justify.
#include "worker/node/control_codec.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <utility>

#include "common/wire/wire_buffer.h"
#include "worker/step_codec.h"

// The largest single heap request while a probe is armed: shows that a forged count
// is refused before anything of its size is reserved. Replacing the global allocator
// is the only way to see the vector/string allocations inside the decoder.
namespace {
std::atomic<bool> g_probe_armed{false};
std::atomic<std::size_t> g_probe_largest{0};
}  // namespace

void* operator new(std::size_t size) {
  if (g_probe_armed.load(std::memory_order_relaxed)) {
    std::size_t seen = g_probe_largest.load(std::memory_order_relaxed);
    while (size > seen && !g_probe_largest.compare_exchange_weak(seen, size)) {
    }
  }
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
// Not inlined: gcc would otherwise see free() meet a pointer from operator new and warn
// of a mismatch that this replacement pair does not have.
[[gnu::noinline]] void operator delete(void* p) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace conveyor {
namespace {

constexpr std::size_t kAlternatives = std::variant_size_v<ControlMessage>;

// Arms the allocation probe for its lifetime.
class AllocationProbe {
 public:
  AllocationProbe() {
    g_probe_largest.store(0);
    g_probe_armed.store(true);
  }
  ~AllocationProbe() { g_probe_armed.store(false); }
  AllocationProbe(const AllocationProbe&) = delete;
  AllocationProbe& operator=(const AllocationProbe&) = delete;
  std::size_t largest() const { return g_probe_largest.load(); }
};

// How random strings and byte arrays are drawn.
enum class Sizes { kRandom, kEmpty, kMaximal };

class MessageMaker {
 public:
  MessageMaker(std::uint64_t seed, Sizes sizes) : random_(seed), sizes_(sizes) {}

  std::uint64_t u64() { return random_(); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(random_()); }
  std::int64_t between(std::int64_t low, std::int64_t high) {
    return std::uniform_int_distribution<std::int64_t>(low, high)(random_);
  }

  // Any byte values, NUL included: the codec carries strings as bytes.
  std::string text() {
    std::size_t n = 0;
    switch (sizes_) {
      case Sizes::kEmpty:
        n = 0;
        break;
      case Sizes::kMaximal:
        n = kMaxControlString;
        break;
      case Sizes::kRandom:
        n = static_cast<std::size_t>(between(0, 3) == 0 ? 0 : between(0, 80));
        break;
    }
    std::string s(n, '\0');
    for (char& c : s)
      c = static_cast<char>(between(0, 255));
    return s;
  }
  std::vector<std::uint8_t> bytes() {
    const std::size_t n = sizes_ == Sizes::kEmpty     ? 0
                          : sizes_ == Sizes::kMaximal ? 3 * kMaxControlString
                                                      : static_cast<std::size_t>(between(0, 300));
    std::vector<std::uint8_t> b(n);
    for (auto& v : b)
      v = static_cast<std::uint8_t>(between(0, 255));
    return b;
  }

  // A valid message of alternative `index`: values satisfy what the decoder checks.
  ControlMessage make(std::size_t index) {
    switch (index) {
      case 0: {
        RegisterMessage m;
        m.worker_id = text();
        m.incarnation = u64();
        m.backend = text();
        m.device = text();
        m.memory_bytes = u64();
        m.speed = std::uniform_real_distribution<double>(1e-6, 1e6)(random_);
        m.host = text();
        return m;
      }
      case 1:
        return WorkerHeartbeatMessage{u64(), u64(), u64()};
      case 2:
        return StageReadyMessage{u64(), text(), text()};
      case 3:
        return LinkedMessage{u64()};
      case 4:
        return StageFailedMessage{u64(), text()};
      case 5:
        return StepResultMessage{u64(), bytes()};
      case 6:
        return LeavingMessage{text()};
      case 7: {
        WelcomeMessage m;
        m.heartbeat_ms = static_cast<std::uint32_t>(between(1, UINT32_MAX));
        m.liveness_ms = static_cast<std::uint32_t>(between(m.heartbeat_ms, UINT32_MAX));
        m.coordinator_incarnation = u64();
        return m;
      }
      case 8: {
        AssignMessage m;
        m.epoch = u64();
        m.model = text();
        m.layer_begin = between(0, INT64_MAX - 1);
        m.layer_end = between(m.layer_begin + 1, INT64_MAX);
        m.stages = static_cast<std::uint32_t>(between(1, UINT32_MAX));
        m.stage = static_cast<std::uint32_t>(between(0, m.stages - 1));
        m.kv_blocks = between(1, INT64_MAX);
        m.block_size = between(1, INT64_MAX);
        m.host_swap_blocks = between(0, INT64_MAX);
        m.disk_dir = text();
        m.disk_swap_blocks = m.disk_dir.empty() ? 0 : between(0, INT64_MAX);
        return m;
      }
      case 9:
        return LinkMessage{u64(), text()};
      case 10:
        return StepMessage{u64(), bytes()};
      case 11:
        return ReleaseMessage{u64()};
      case 12:
        return CoordinatorHeartbeatMessage{u64()};
      case 13:
        return ShutdownMessage{};
    }
    FAIL("no alternative " << index);
    return ShutdownMessage{};
  }

  ControlMessage any() {
    return make(static_cast<std::size_t>(between(0, static_cast<std::int64_t>(kAlternatives) - 1)));
  }

 private:
  std::mt19937_64 random_;
  Sizes sizes_;
};
static_assert(kAlternatives == 14, "a new alternative needs a case in MessageMaker::make");

// Every field, for comparing decoded messages with what was encoded.
auto fields(const RegisterMessage& m) {
  return std::tie(m.worker_id, m.incarnation, m.backend, m.device, m.memory_bytes, m.speed, m.host);
}
auto fields(const WorkerHeartbeatMessage& m) {
  return std::tie(m.incarnation, m.epoch, m.steps);
}
auto fields(const StageReadyMessage& m) {
  return std::tie(m.epoch, m.receiver_address, m.transport);
}
auto fields(const LinkedMessage& m) {
  return std::tie(m.epoch);
}
auto fields(const StageFailedMessage& m) {
  return std::tie(m.epoch, m.message);
}
auto fields(const StepResultMessage& m) {
  return std::tie(m.epoch, m.output);
}
auto fields(const LeavingMessage& m) {
  return std::tie(m.reason);
}
auto fields(const WelcomeMessage& m) {
  return std::tie(m.heartbeat_ms, m.liveness_ms, m.coordinator_incarnation);
}
auto fields(const AssignMessage& m) {
  return std::tie(m.epoch, m.model, m.layer_begin, m.layer_end, m.stage, m.stages, m.kv_blocks,
                  m.block_size, m.host_swap_blocks, m.disk_swap_blocks, m.disk_dir);
}
auto fields(const LinkMessage& m) {
  return std::tie(m.epoch, m.next_address);
}
auto fields(const StepMessage& m) {
  return std::tie(m.epoch, m.plan);
}
auto fields(const ReleaseMessage& m) {
  return std::tie(m.epoch);
}
auto fields(const CoordinatorHeartbeatMessage& m) {
  return std::tie(m.coordinator_incarnation);
}
auto fields(const ShutdownMessage&) {
  return std::tuple<>();
}

bool same(const ControlMessage& a, const ControlMessage& b) {
  if (a.index() != b.index()) return false;
  return std::visit(
      [&](const auto& x) {
        const auto& y = std::get<std::decay_t<decltype(x)>>(b);
        return fields(x) == fields(y);
      },
      a);
}

// The header every encoding starts with, for forging messages by hand.
WireWriter header(std::size_t index, std::uint16_t version = kControlVersion) {
  WireWriter w;
  w.put<std::uint32_t>(kControlMagic);
  w.put<std::uint16_t>(version);
  w.put<std::uint8_t>(static_cast<std::uint8_t>(index));
  return w;
}

ErrorCode decode_code(std::span<const std::uint8_t> bytes) {
  return decode_control(bytes).status().code();
}

// What the decoder may do with any input: refuse it as malformed or unsupported, or
// decode it to a message that encodes back to exactly the same bytes.
bool decodes_canonically_or_refuses(std::span<const std::uint8_t> bytes) {
  const Expected<ControlMessage> decoded = decode_control(bytes);
  if (!decoded.ok()) {
    const ErrorCode code = decoded.status().code();
    return code == ErrorCode::kMalformed || code == ErrorCode::kUnsupported;
  }
  const std::vector<std::uint8_t> again = encode_control(*decoded);
  return std::equal(again.begin(), again.end(), bytes.begin(), bytes.end());
}

TEST_CASE("every control message round-trips with random field values") {
  MessageMaker maker(20240611, Sizes::kRandom);
  std::size_t seen[kAlternatives] = {};
  for (int i = 0; i < 5000; ++i) {
    const ControlMessage message = maker.any();
    ++seen[message.index()];
    const std::vector<std::uint8_t> bytes = encode_control(message);
    const Expected<ControlMessage> decoded = decode_control(bytes);
    REQUIRE_MESSAGE(decoded.ok(), control_message_name(message)
                                      << ": " << decoded.status().message());
    REQUIRE_MESSAGE(same(message, *decoded), control_message_name(message));
    REQUIRE(encode_control(*decoded) == bytes);
  }
  for (std::size_t index = 0; index < kAlternatives; ++index)
    CHECK(seen[index] > 0);
}

TEST_CASE("empty and maximal strings and payloads round-trip") {
  for (const Sizes sizes : {Sizes::kEmpty, Sizes::kMaximal}) {
    MessageMaker maker(7, sizes);
    for (std::size_t index = 0; index < kAlternatives; ++index) {
      CAPTURE(index);
      const ControlMessage message = maker.make(index);
      const Expected<ControlMessage> decoded = decode_control(encode_control(message));
      REQUIRE(decoded.ok());
      CHECK(same(message, *decoded));
    }
  }
}

TEST_CASE("a string one byte longer than the limit is refused") {
  LeavingMessage leaving{std::string(kMaxControlString + 1, 'x')};
  CHECK(decode_code(encode_control(leaving)) == ErrorCode::kMalformed);
  RegisterMessage registration;
  registration.host = std::string(kMaxControlString + 1, 'h');
  CHECK(decode_code(encode_control(registration)) == ErrorCode::kMalformed);
}

TEST_CASE("a step message carries an encoded plan and a step result an encoded output") {
  StepPlan plan;
  plan.step = 77;
  PlannedSequence sequence;
  sequence.id = 5;
  sequence.start = 3;
  sequence.tokens = {11, 12, 13};
  sequence.block_table = {0, 4};
  sequence.samples = true;
  auto sampling = std::make_shared<SequenceSampling>();
  sampling->seed = 99;
  sampling->prompt_tokens = 3;
  sampling->params.max_tokens = 16;
  sampling->params.stop_strings = {"END"};
  sequence.sampling = sampling;
  plan.sequences.push_back(sequence);
  plan.released = {1, 2};

  const Expected<ControlMessage> step =
      decode_control(encode_control(StepMessage{9, encode_step_plan(plan)}));
  REQUIRE(step.ok());
  REQUIRE(std::holds_alternative<StepMessage>(*step));
  CHECK(std::get<StepMessage>(*step).epoch == 9);
  const Expected<StepPlan> inner_plan = decode_step_plan(std::get<StepMessage>(*step).plan);
  REQUIRE(inner_plan.ok());
  CHECK(inner_plan->step == 77);
  CHECK(inner_plan->released == std::vector<std::int64_t>{1, 2});
  REQUIRE(inner_plan->sequences.size() == 1);
  CHECK(inner_plan->sequences[0].tokens == sequence.tokens);
  CHECK(inner_plan->sequences[0].block_table == sequence.block_table);
  REQUIRE(inner_plan->sequences[0].sampling);
  CHECK(inner_plan->sequences[0].sampling->params.stop_strings == std::vector<std::string>{"END"});

  StepOutput output;
  output.step = 77;
  SampledToken token;
  token.id = 5;
  token.sample.token = 42;
  token.sample.logprob = -0.25f;
  output.samples.push_back(token);
  SampledToken failed;
  failed.id = 6;
  failed.status = Status(ErrorCode::kInternal, "no finite logit");
  output.samples.push_back(failed);

  const Expected<ControlMessage> result =
      decode_control(encode_control(StepResultMessage{9, encode_step_output(output)}));
  REQUIRE(result.ok());
  REQUIRE(std::holds_alternative<StepResultMessage>(*result));
  const Expected<StepOutput> inner_output =
      decode_step_output(std::get<StepResultMessage>(*result).output);
  REQUIRE(inner_output.ok());
  CHECK(inner_output->step == 77);
  REQUIRE(inner_output->samples.size() == 2);
  CHECK(inner_output->samples[0].sample.token == 42);
  CHECK(inner_output->samples[0].sample.logprob == -0.25f);
  CHECK(inner_output->samples[1].status.code() == ErrorCode::kInternal);
}

TEST_CASE("every truncation of every message type is refused") {
  MessageMaker maker(31, Sizes::kRandom);
  for (std::size_t index = 0; index < kAlternatives; ++index) {
    for (int sample = 0; sample < 8; ++sample) {
      const std::vector<std::uint8_t> bytes = encode_control(maker.make(index));
      for (std::size_t size = 0; size < bytes.size(); ++size) {
        const ErrorCode code = decode_code(std::span(bytes).first(size));
        if (code != ErrorCode::kMalformed) {
          FAIL("alternative " << index << " truncated to " << size << " of " << bytes.size()
                              << " bytes: code " << static_cast<int>(code));
        }
      }
    }
  }
}

TEST_CASE("trailing bytes after a message are refused") {
  MessageMaker maker(32, Sizes::kRandom);
  for (std::size_t index = 0; index < kAlternatives; ++index) {
    CAPTURE(index);
    std::vector<std::uint8_t> bytes = encode_control(maker.make(index));
    bytes.push_back(0);
    CHECK(decode_code(bytes) == ErrorCode::kMalformed);
    bytes.insert(bytes.end(), 64, 0xAB);
    CHECK(decode_code(bytes) == ErrorCode::kMalformed);
  }
}

TEST_CASE("the header: magic, version and message type are checked") {
  const std::vector<std::uint8_t> good = encode_control(LinkedMessage{3});
  REQUIRE(decode_control(good).ok());

  SUBCASE("bad magic is malformed") {
    for (std::size_t at = 0; at < 4; ++at) {
      std::vector<std::uint8_t> bytes = good;
      bytes[at] ^= 0x20;
      CHECK(decode_code(bytes) == ErrorCode::kMalformed);
    }
    // A step codec frame is not a control message.
    CHECK(decode_code(encode_step_plan(StepPlan{})) == ErrorCode::kMalformed);
  }
  SUBCASE("another version is unsupported") {
    for (const int version : {0, kControlVersion - 1, kControlVersion + 1, 0xFFFF}) {
      WireWriter w = header(3, static_cast<std::uint16_t>(version));
      w.put<std::uint64_t>(3);
      CHECK(decode_code(w.bytes()) == ErrorCode::kUnsupported);
    }
  }
  SUBCASE("an unknown message type is malformed") {
    for (const std::size_t index : {kAlternatives, kAlternatives + 1, std::size_t{255}}) {
      WireWriter w = header(index);
      w.put<std::uint64_t>(3);
      CHECK(decode_code(w.bytes()) == ErrorCode::kMalformed);
      CHECK(decode_code(header(index).bytes()) == ErrorCode::kMalformed);
    }
  }
}

TEST_CASE("a forged count is refused before anything of its size is allocated") {
  struct Forged {
    const char* what;
    std::vector<std::uint8_t> bytes;
  };
  std::vector<Forged> forged;
  for (const std::uint32_t count : {0xFFFFFFFFu, std::uint32_t{kMaxControlString}, 1000u}) {
    WireWriter leaving = header(6);  // reason: a string
    leaving.put<std::uint32_t>(count);
    leaving.put<std::uint64_t>(0);
    forged.push_back({"leaving reason", leaving.take()});

    WireWriter registration = header(0);  // worker_id, the first field
    registration.put<std::uint32_t>(count);
    forged.push_back({"register worker_id", registration.take()});
  }
  for (const std::uint32_t count :
       {0xFFFFFFFFu, static_cast<std::uint32_t>(kMaxControlPayload), 1u << 20}) {
    WireWriter step = header(10);  // plan: a byte array
    step.put<std::uint64_t>(1);
    step.put<std::uint32_t>(count);
    step.put<std::uint32_t>(0);
    forged.push_back({"step plan", step.take()});

    WireWriter result = header(5);  // output: a byte array
    result.put<std::uint64_t>(1);
    result.put<std::uint32_t>(count);
    forged.push_back({"step result output", result.take()});
  }
  {
    // The probe sees what a genuine payload of that size does allocate.
    const std::vector<std::uint8_t> genuine =
        encode_control(StepMessage{1, std::vector<std::uint8_t>(1u << 20, 7)});
    AllocationProbe probe;
    CHECK(decode_control(genuine).ok());
    CHECK(probe.largest() >= (1u << 20));
  }
  for (const Forged& f : forged) {
    CAPTURE(f.what);
    AllocationProbe probe;
    const ErrorCode code = decode_code(f.bytes);
    const std::size_t largest = probe.largest();
    CHECK(code == ErrorCode::kMalformed);
    // The error text is the largest thing worth allocating for a 20-byte message.
    CHECK(largest < 1024);
  }
}

TEST_CASE("out-of-range values are refused") {
  const auto refused = [](const ControlMessage& message) {
    return decode_code(encode_control(message)) == ErrorCode::kMalformed;
  };
  AssignMessage assign;
  assign.epoch = 1;
  assign.model = "m";
  assign.layer_begin = 0;
  assign.layer_end = 8;
  assign.stage = 1;
  assign.stages = 2;
  assign.kv_blocks = 64;
  assign.block_size = 16;
  REQUIRE(decode_control(encode_control(assign)).ok());
  const auto with = [&](auto change) {
    AssignMessage m = assign;
    change(m);
    return m;
  };
  CHECK(refused(with([](AssignMessage& m) { m.layer_end = m.layer_begin; })));
  CHECK(refused(with([](AssignMessage& m) { m.layer_end = m.layer_begin - 1; })));
  CHECK(refused(with([](AssignMessage& m) { m.layer_begin = -1; })));
  CHECK(refused(with([](AssignMessage& m) { m.stage = m.stages; })));
  CHECK(refused(with([](AssignMessage& m) { m.stage = 7; })));
  CHECK(refused(with([](AssignMessage& m) {
    m.stages = 0;
    m.stage = 0;
  })));
  CHECK(refused(with([](AssignMessage& m) { m.kv_blocks = 0; })));
  CHECK(refused(with([](AssignMessage& m) { m.kv_blocks = -5; })));
  CHECK(refused(with([](AssignMessage& m) { m.block_size = 0; })));
  CHECK(refused(with([](AssignMessage& m) { m.host_swap_blocks = -1; })));
  CHECK(refused(with([](AssignMessage& m) { m.disk_swap_blocks = 8; })));  // without a directory

  CHECK(decode_control(encode_control(WelcomeMessage{100, 100, 1})).ok());
  CHECK(refused(WelcomeMessage{100, 99, 1}));
  CHECK(refused(WelcomeMessage{100, 0, 1}));
  CHECK(refused(WelcomeMessage{0, 0, 1}));

  for (const double speed :
       {0.0, -0.0, -1.0, std::numeric_limits<double>::quiet_NaN(),
        -std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
        -std::numeric_limits<double>::infinity(), 1e13}) {
    CAPTURE(speed);
    RegisterMessage registration;
    registration.worker_id = "w";
    registration.speed = speed;
    CHECK(refused(registration));
  }
  RegisterMessage slow;
  slow.speed = std::numeric_limits<double>::denorm_min();
  CHECK(decode_control(encode_control(slow)).ok());
}

TEST_CASE("every alternative has a distinct name") {
  MessageMaker maker(5, Sizes::kEmpty);
  std::set<std::string> names;
  for (std::size_t index = 0; index < kAlternatives; ++index) {
    const char* name = control_message_name(maker.make(index));
    REQUIRE(name != nullptr);
    CHECK(std::strlen(name) > 0);
    names.insert(name);
  }
  CHECK(names.size() == kAlternatives);
  CHECK(std::string(control_message_name(RegisterMessage{})) == "register");
  CHECK(std::string(control_message_name(StepMessage{})) == "step");
  CHECK(std::string(control_message_name(StepResultMessage{})) == "step-result");
  CHECK(std::string(control_message_name(ShutdownMessage{})) == "shutdown");
}

TEST_CASE("random bytes never crash the decoder") {
  std::mt19937_64 random(99);
  const auto pick = [&](std::uint64_t high) {
    return std::uniform_int_distribution<std::uint64_t>(0, high)(random);
  };
  std::size_t decoded = 0;
  for (int i = 0; i < 50000; ++i) {
    // Half start with a valid header, so the bytes reach the message bodies.
    std::vector<std::uint8_t> bytes;
    if (i % 2 == 0) bytes = header(pick(kAlternatives)).take();
    for (std::uint64_t n = pick(48); n > 0; --n)
      bytes.push_back(static_cast<std::uint8_t>(pick(255)));
    if (!decodes_canonically_or_refuses(bytes)) FAIL("input " << i << " decoded inconsistently");
    decoded += decode_control(bytes).ok() ? 1 : 0;
  }
  // Fixed-width messages with random bodies do decode: the loop reaches past headers.
  CHECK(decoded > 0);
}

TEST_CASE("mutated valid encodings never crash the decoder") {
  MessageMaker maker(1234, Sizes::kRandom);
  std::mt19937_64 random(4321);
  const auto pick = [&](std::uint64_t high) {
    return std::uniform_int_distribution<std::uint64_t>(0, high)(random);
  };
  for (int i = 0; i < 30000; ++i) {
    std::vector<std::uint8_t> bytes = encode_control(maker.any());
    for (std::uint64_t edits = pick(3) + 1; edits > 0; --edits) {
      const std::size_t at = bytes.empty() ? 0 : static_cast<std::size_t>(pick(bytes.size() - 1));
      switch (pick(5)) {
        case 0:  // flip a bit
          if (!bytes.empty()) bytes[at] ^= static_cast<std::uint8_t>(1u << pick(7));
          break;
        case 1:  // overwrite a byte
          if (!bytes.empty()) bytes[at] = static_cast<std::uint8_t>(pick(255));
          break;
        case 2:  // insert a byte
          bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(at),
                       static_cast<std::uint8_t>(pick(255)));
          break;
        case 3:  // delete a byte
          if (!bytes.empty()) bytes.erase(bytes.begin() + static_cast<std::ptrdiff_t>(at));
          break;
        case 4:  // truncate
          bytes.resize(at);
          break;
        case 5:  // an extreme 32-bit value where a count may sit
          if (bytes.size() >= at + 4) {
            const std::uint32_t extreme = pick(1) == 0 ? 0xFFFFFFFFu : 0x7FFFFFFFu;
            std::memcpy(bytes.data() + at, &extreme, 4);
          }
          break;
      }
    }
    if (!decodes_canonically_or_refuses(bytes)) FAIL("mutation " << i << " decoded inconsistently");
  }
}

}  // namespace
}  // namespace conveyor
