// The control messages between the coordinator and its workers: registration,
// heartbeats, stage assignment and linking, step plans and step results. They travel
// over ZeroMQ (the worker's DEALER to the coordinator's worker ROUTER) in a compact,
// versioned binary form whose decoder checks every length (control_codec.h).
//
// A worker's life: Register (until Welcome) -> Assign(epoch) -> StageReady(epoch,
// its activation receiver's address) -> Link(epoch, the next stage's address) ->
// Linked(epoch) -> Step(epoch, plan)... -> StepResult(epoch, output) from the last
// stage. Every assignment carries an epoch; a message of an older epoch is stale and
// is dropped (and counted) by whoever receives it. Heartbeats go both ways.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace conveyor {

// Worker -> coordinator.
struct RegisterMessage {
  std::string worker_id;           // stable name (host-pid unless given)
  std::uint64_t incarnation = 0;   // random per process start: a restarted worker is new
  std::string backend;             // "cpu", "cuda"
  std::string device;              // "cpu", "cuda:0"
  std::uint64_t memory_bytes = 0;  // what it may use for weights and K/V
  double speed = 1.0;              // measured: relative layer throughput
  std::string host;                // where its activation receivers listen
};
struct WorkerHeartbeatMessage {
  std::uint64_t incarnation = 0;
  std::uint64_t epoch = 0;  // of the stage it holds; 0 when none
  std::uint64_t steps = 0;  // steps run since it started
};
struct StageReadyMessage {
  std::uint64_t epoch = 0;
  std::string receiver_address;  // "host:port"; empty on a first stage
  std::string transport;         // what the activation transport uses, for the log
};
struct LinkedMessage {
  std::uint64_t epoch = 0;
};
struct StageFailedMessage {
  std::uint64_t epoch = 0;
  std::string message;
};
struct StepResultMessage {
  std::uint64_t epoch = 0;
  std::vector<std::uint8_t> output;  // an encoded StepOutput (worker/step_codec.h)
};
struct LeavingMessage {
  std::string reason;  // a draining worker hands its stage back
};

// Coordinator -> worker.
struct WelcomeMessage {
  std::uint32_t heartbeat_ms = 0;
  std::uint32_t liveness_ms = 0;  // silence after which the peer counts as dead
  std::uint64_t coordinator_incarnation = 0;
};
struct AssignMessage {
  std::uint64_t epoch = 0;
  std::string model;  // the model argument (path or name) the worker opens itself
  std::int64_t layer_begin = 0;
  std::int64_t layer_end = 0;
  std::uint32_t stage = 0;
  std::uint32_t stages = 0;
  std::int64_t kv_blocks = 0;
  std::int64_t block_size = 0;
  // Swap tiers for preempted sequences' K/V: slots (blocks) of host memory and of a
  // file in disk_dir; 0: none.
  std::int64_t host_swap_blocks = 0;
  std::int64_t disk_swap_blocks = 0;
  std::string disk_dir;
};
struct LinkMessage {
  std::uint64_t epoch = 0;
  std::string next_address;  // the next stage's receiver
};
struct StepMessage {
  std::uint64_t epoch = 0;
  std::vector<std::uint8_t> plan;  // an encoded StepPlan
};
struct ReleaseMessage {
  std::uint64_t epoch = 0;  // unload the stage of this epoch
};
// The incarnation a coordinator answers a worker it does not know with (one that
// registered with an earlier coordinator, or was dropped as silent): the worker drops
// its stage and registers again. Real incarnations are never 0.
inline constexpr std::uint64_t kUnknownWorker = 0;

struct CoordinatorHeartbeatMessage {
  std::uint64_t coordinator_incarnation = 0;
};
struct ShutdownMessage {};

using ControlMessage =
    std::variant<RegisterMessage, WorkerHeartbeatMessage, StageReadyMessage, LinkedMessage,
                 StageFailedMessage, StepResultMessage, LeavingMessage, WelcomeMessage,
                 AssignMessage, LinkMessage, StepMessage, ReleaseMessage,
                 CoordinatorHeartbeatMessage, ShutdownMessage>;

}  // namespace conveyor
