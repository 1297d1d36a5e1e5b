// WorkerAgent: the `conveyor worker` process. It registers with the coordinator over
// ZeroMQ (a DEALER to the coordinator's worker ROUTER), sends heartbeats, loads the
// stage it is assigned (a layer range of the model, with its K/V storage), links the
// stage's activations to the next stage over UCX, runs the step plans it is sent, and
// returns the last stage's sampled tokens. A coordinator that falls silent (or
// restarts) makes it drop its stage and register again; SIGTERM makes it hand its
// stage back and exit.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include <string>
#include "worker/platform/backend_factory.h"
#include "worker/stage_actor.h"

#include <zmq.hpp>

namespace conveyor {

struct WorkerAgentOptions {
  std::string coordinator;  // the coordinator's worker endpoint, tcp://HOST:PORT
  std::string name;         // "" = hostname-pid
  // Where this worker's activation receivers listen (other workers connect there);
  // "" = the local address this host reaches the coordinator from.
  std::string host;
  // 0 = 80% of physical memory on the CPU backend; on a GPU, the device pool less room
  // for activations
  std::uint64_t memory_bytes = 0;
  int threads = 0;  // CPU backend threads (and the speed probe's); 0 = every core
  // The backend the stage runs on: the CPU (the default) or a CUDA device. The
  // coordinator plans K/V in f32, which both keep.
  BackendRequest backend{BackendKind::kCpu};
  // Applied to the DEALER before it connects: CurveZMQ client keys.
  std::function<void(zmq::socket_t&)> configure_socket;
  // Set (from a signal handler) to drain and exit.
  const std::atomic<bool>* stop = nullptr;
};

// What the agent has done so far, for the metrics endpoint; read from any thread.
struct WorkerAgentCounters {
  std::uint64_t steps = 0;           // step plans submitted to the stage
  std::uint64_t stale_messages = 0;  // links and steps for an epoch no longer held
  bool registered = false;           // the coordinator has welcomed this worker
  std::uint64_t epoch = 0;           // the epoch of the stage held; 0 = none
  // Every stage this worker has held, added up (the bubble ratio: the latest
  // stage's), refreshed about once a heartbeat.
  StageStats stage;
};

class WorkerAgent {
 public:
  explicit WorkerAgent(WorkerAgentOptions options);
  ~WorkerAgent();
  WorkerAgent(const WorkerAgent&) = delete;
  WorkerAgent& operator=(const WorkerAgent&) = delete;

  // Runs until the coordinator says shutdown or `stop` is set; the exit code.
  int run();
  // Thread-safe: a snapshot while run() goes on.
  WorkerAgentCounters counters() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace conveyor
