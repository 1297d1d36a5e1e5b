#include "worker/node/control_codec.h"

#include <string>
#include <type_traits>

#include "common/wire/wire_buffer.h"

namespace conveyor {
namespace {

void put_bytes(WireWriter& w, const std::vector<std::uint8_t>& bytes) {
  w.put_array(bytes);
}
std::vector<std::uint8_t> get_bytes(WireReader& r, const char* field) {
  return r.get_array<std::uint8_t>(field, kMaxControlPayload);
}
std::string get_text(WireReader& r, const char* field) {
  return r.get_string(field, kMaxControlString);
}

// One overload pair per message: the fields in declaration order.
void put(WireWriter& w, const RegisterMessage& m) {
  w.put_string(m.worker_id);
  w.put<std::uint64_t>(m.incarnation);
  w.put_string(m.backend);
  w.put_string(m.device);
  w.put<std::uint64_t>(m.memory_bytes);
  w.put<double>(m.speed);
  w.put_string(m.host);
}
void get(WireReader& r, RegisterMessage& m) {
  m.worker_id = get_text(r, "worker_id");
  m.incarnation = r.get<std::uint64_t>("incarnation");
  m.backend = get_text(r, "backend");
  m.device = get_text(r, "device");
  m.memory_bytes = r.get<std::uint64_t>("memory_bytes");
  m.speed = r.get<double>("speed");
  if (!(m.speed > 0) || m.speed > 1e12) fail(ErrorCode::kMalformed, "wire: speed out of range");
  m.host = get_text(r, "host");
}
void put(WireWriter& w, const WorkerHeartbeatMessage& m) {
  w.put<std::uint64_t>(m.incarnation);
  w.put<std::uint64_t>(m.epoch);
  w.put<std::uint64_t>(m.steps);
}
void get(WireReader& r, WorkerHeartbeatMessage& m) {
  m.incarnation = r.get<std::uint64_t>("incarnation");
  m.epoch = r.get<std::uint64_t>("epoch");
  m.steps = r.get<std::uint64_t>("steps");
}
void put(WireWriter& w, const StageReadyMessage& m) {
  w.put<std::uint64_t>(m.epoch);
  w.put_string(m.receiver_address);
  w.put_string(m.transport);
}
void get(WireReader& r, StageReadyMessage& m) {
  m.epoch = r.get<std::uint64_t>("epoch");
  m.receiver_address = get_text(r, "receiver_address");
  m.transport = get_text(r, "transport");
}
void put(WireWriter& w, const LinkedMessage& m) {
  w.put<std::uint64_t>(m.epoch);
}
void get(WireReader& r, LinkedMessage& m) {
  m.epoch = r.get<std::uint64_t>("epoch");
}
void put(WireWriter& w, const StageFailedMessage& m) {
  w.put<std::uint64_t>(m.epoch);
  w.put_string(m.message);
}
void get(WireReader& r, StageFailedMessage& m) {
  m.epoch = r.get<std::uint64_t>("epoch");
  m.message = get_text(r, "message");
}
void put(WireWriter& w, const StepResultMessage& m) {
  w.put<std::uint64_t>(m.epoch);
  put_bytes(w, m.output);
}
void get(WireReader& r, StepResultMessage& m) {
  m.epoch = r.get<std::uint64_t>("epoch");
  m.output = get_bytes(r, "output");
}
void put(WireWriter& w, const LeavingMessage& m) {
  w.put_string(m.reason);
}
void get(WireReader& r, LeavingMessage& m) {
  m.reason = get_text(r, "reason");
}
void put(WireWriter& w, const WelcomeMessage& m) {
  w.put<std::uint32_t>(m.heartbeat_ms);
  w.put<std::uint32_t>(m.liveness_ms);
  w.put<std::uint64_t>(m.coordinator_incarnation);
}
void get(WireReader& r, WelcomeMessage& m) {
  m.heartbeat_ms = r.get<std::uint32_t>("heartbeat_ms");
  m.liveness_ms = r.get<std::uint32_t>("liveness_ms");
  m.coordinator_incarnation = r.get<std::uint64_t>("coordinator_incarnation");
  if (m.heartbeat_ms == 0 || m.liveness_ms < m.heartbeat_ms) {
    fail(ErrorCode::kMalformed, "wire: heartbeat interval and liveness out of order");
  }
}
void put(WireWriter& w, const AssignMessage& m) {
  w.put<std::uint64_t>(m.epoch);
  w.put_string(m.model);
  w.put<std::int64_t>(m.layer_begin);
  w.put<std::int64_t>(m.layer_end);
  w.put<std::uint32_t>(m.stage);
  w.put<std::uint32_t>(m.stages);
  w.put<std::int64_t>(m.kv_blocks);
  w.put<std::int64_t>(m.block_size);
  w.put<std::int64_t>(m.host_swap_blocks);
  w.put<std::int64_t>(m.disk_swap_blocks);
  w.put_string(m.disk_dir);
}
void get(WireReader& r, AssignMessage& m) {
  m.epoch = r.get<std::uint64_t>("epoch");
  m.model = get_text(r, "model");
  m.layer_begin = r.get<std::int64_t>("layer_begin");
  m.layer_end = r.get<std::int64_t>("layer_end");
  m.stage = r.get<std::uint32_t>("stage");
  m.stages = r.get<std::uint32_t>("stages");
  m.kv_blocks = r.get<std::int64_t>("kv_blocks");
  m.block_size = r.get<std::int64_t>("block_size");
  m.host_swap_blocks = r.get<std::int64_t>("host_swap_blocks");
  m.disk_swap_blocks = r.get<std::int64_t>("disk_swap_blocks");
  m.disk_dir = get_text(r, "disk_dir");
  if (m.layer_begin < 0 || m.layer_end <= m.layer_begin || m.stages == 0 || m.stage >= m.stages ||
      m.kv_blocks <= 0 || m.block_size <= 0 || m.host_swap_blocks < 0 || m.disk_swap_blocks < 0 ||
      (m.disk_swap_blocks > 0 && m.disk_dir.empty())) {
    fail(ErrorCode::kMalformed, "wire: assignment out of range");
  }
}
void put(WireWriter& w, const LinkMessage& m) {
  w.put<std::uint64_t>(m.epoch);
  w.put_string(m.next_address);
}
void get(WireReader& r, LinkMessage& m) {
  m.epoch = r.get<std::uint64_t>("epoch");
  m.next_address = get_text(r, "next_address");
}
void put(WireWriter& w, const StepMessage& m) {
  w.put<std::uint64_t>(m.epoch);
  put_bytes(w, m.plan);
}
void get(WireReader& r, StepMessage& m) {
  m.epoch = r.get<std::uint64_t>("epoch");
  m.plan = get_bytes(r, "plan");
}
void put(WireWriter& w, const ReleaseMessage& m) {
  w.put<std::uint64_t>(m.epoch);
}
void get(WireReader& r, ReleaseMessage& m) {
  m.epoch = r.get<std::uint64_t>("epoch");
}
void put(WireWriter& w, const CoordinatorHeartbeatMessage& m) {
  w.put<std::uint64_t>(m.coordinator_incarnation);
}
void get(WireReader& r, CoordinatorHeartbeatMessage& m) {
  m.coordinator_incarnation = r.get<std::uint64_t>("coordinator_incarnation");
}
void put(WireWriter&, const ShutdownMessage&) {}
void get(WireReader&, ShutdownMessage&) {}

// Default-constructs alternative `index` of the variant and reads its fields.
template <std::size_t I = 0>
ControlMessage read_alternative(std::size_t index, WireReader& r) {
  if constexpr (I < std::variant_size_v<ControlMessage>) {
    if (index == I) {
      std::variant_alternative_t<I, ControlMessage> message;
      get(r, message);
      return message;
    }
    return read_alternative<I + 1>(index, r);
  } else {
    fail(ErrorCode::kMalformed, "wire: unknown control message type " + std::to_string(index));
  }
}

}  // namespace

std::vector<std::uint8_t> encode_control(const ControlMessage& message) {
  WireWriter w;
  w.put<std::uint32_t>(kControlMagic);
  w.put<std::uint16_t>(kControlVersion);
  w.put<std::uint8_t>(static_cast<std::uint8_t>(message.index()));
  std::visit([&](const auto& m) { put(w, m); }, message);
  return w.take();
}

Expected<ControlMessage> decode_control(std::span<const std::uint8_t> bytes) {
  try {
    WireReader r(bytes);
    if (r.get<std::uint32_t>("magic") != kControlMagic) {
      return Status(ErrorCode::kMalformed, "wire: not a control message (bad magic)");
    }
    const auto version = r.get<std::uint16_t>("version");
    if (version != kControlVersion) {
      return Status(ErrorCode::kUnsupported,
                    "wire: control message version " + std::to_string(version) +
                        "; this build reads version " + std::to_string(kControlVersion));
    }
    const auto index = r.get<std::uint8_t>("type");
    ControlMessage message = read_alternative(index, r);
    r.expect_end("control message");
    return message;
  } catch (const Error& e) {
    return e.status();
  }
}

const char* control_message_name(const ControlMessage& message) {
  static constexpr const char* kNames[] = {"register",
                                           "worker-heartbeat",
                                           "stage-ready",
                                           "linked",
                                           "stage-failed",
                                           "step-result",
                                           "leaving",
                                           "welcome",
                                           "assign",
                                           "link",
                                           "step",
                                           "release",
                                           "coordinator-heartbeat",
                                           "shutdown"};
  static_assert(std::size(kNames) == std::variant_size_v<ControlMessage>);
  return kNames[message.index()];
}

}  // namespace conveyor
