#include "worker/node/worker_agent.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "common/loader/open_model.h"
#include "common/log/log.h"
#include "common/log/rate_limiter.h"
#include "common/model_registry.h"
#include "worker/node/control_codec.h"
#include "worker/node/deferred_channel.h"
#include "worker/node/incarnation.h"
#include "worker/node/node_address.h"
#include "worker/node/speed_probe.h"
#include "worker/step_codec.h"
#include "worker/transport/ucx_channel.h"
#include "worker/worker_control.h"

namespace conveyor {
namespace {

using Clock = std::chrono::steady_clock;

spdlog::logger& worker_log() {
  static spdlog::logger& out = logger("worker");
  return out;
}

// A coordinator (or something posing as one) that keeps sending what this worker
// cannot decode would otherwise fill the log.
log::RateLimiter& refused_messages() {
  static log::RateLimiter limiter(5, std::chrono::seconds(10));
  return limiter;
}

std::string hex_incarnation(std::uint64_t incarnation) {
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(incarnation));
  return text;
}

std::uint64_t default_memory() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return 8ull << 30;
  return static_cast<std::uint64_t>(static_cast<double>(pages) * static_cast<double>(page) * 0.8);
}

// "UCX 1.13.1, ... (lanes: tcp/lo.0, tcp/eth0.0)": the first line of UCX's endpoint
// description and the transports/devices of its lanes, for one log line.
std::string lanes_of(const std::string& description) {
  std::string summary = description.substr(0, description.find('\n'));
  static const std::regex lane(R"(lane\[\d+\]:\s+\d+:([A-Za-z0-9_]+/[A-Za-z0-9_.:-]+))");
  std::set<std::string> seen;
  std::string lanes;
  for (std::sregex_iterator it(description.begin(), description.end(), lane), end; it != end;
       ++it) {
    if (seen.insert((*it)[1]).second) lanes += (lanes.empty() ? "" : ", ") + (*it)[1].str();
  }
  return lanes.empty() ? summary : summary + " (lanes: " + lanes + ")";
}

// The loaded stage of one assignment (one epoch) and what serves it.
struct LoadedStage {
  std::uint64_t epoch = 0;
  std::atomic<bool> forwarded_all{false};       // the forwarder has ended
  std::unique_ptr<ActivationChannel> receiver;  // from the previous stage; none on the first
  DeferredActivationChannel output;             // to the next stage; unused on the last
  Channel<StepOutput> results;                  // failures from any stage, tokens from the last
  std::thread forwarder;                        // results -> the main loop
};

}  // namespace

struct WorkerAgent::State {
  WorkerAgentOptions options;
  std::string name;
  std::string device_kind = "cpu";  // "cpu" or "cuda", as registered
  std::uint64_t incarnation = new_incarnation();
  zmq::context_t context{1};
  zmq::socket_t dealer{context, zmq::socket_type::dealer};
  zmq::socket_t results_in{context, zmq::socket_type::pull};
  std::string results_endpoint;
  std::unique_ptr<WorkerControl> control;
  std::map<std::string, std::shared_ptr<ModelSource>> models;
  std::unique_ptr<LoadedStage> stage;
  double speed = 1.0;

  // Atomics where counters() reads them from other threads; the rest lives on run()'s.
  std::atomic<bool> registered{false};
  std::uint64_t coordinator_incarnation = 0;
  std::chrono::milliseconds heartbeat{1000};
  std::chrono::milliseconds liveness{5000};
  Clock::time_point last_heard = Clock::now();
  std::atomic<std::uint64_t> steps{0};
  std::atomic<std::uint64_t> stale{0};
  std::atomic<std::uint64_t> stage_epoch{0};  // stage->epoch, or 0 without a stage
  // Stage statistics for counters(): of the stages dropped, and the one held.
  mutable std::mutex stage_stats_mutex;
  StageStats dropped_stages;
  StageStats held_stage;

  // Copies the held stage's statistics for scrapes (on run()'s thread).
  void refresh_stage_stats() {
    const StageActor* actor = control->stage();
    const StageStats now = actor != nullptr ? actor->stats() : StageStats{};
    std::lock_guard lock(stage_stats_mutex);
    held_stage = now;
  }
  StageStats stage_stats() const {
    std::lock_guard lock(stage_stats_mutex);
    StageStats all = held_stage;
    add_counters(all, dropped_stages);
    if (all.transport.empty()) all.transport = dropped_stages.transport;
    if (held_stage.steps == 0) all.bubble_ratio = dropped_stages.bubble_ratio;
    return all;
  }

  void send(const ControlMessage& message) {
    const std::vector<std::uint8_t> bytes = encode_control(message);
    // Never block on a coordinator that is away: heartbeats and registrations repeat,
    // and results of a lost coordinator are stale anyway.
    (void)dealer.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
  }

  std::shared_ptr<ModelSource> model(const std::string& argument) {
    auto it = models.find(argument);
    if (it != models.end()) return it->second;
    Expected<std::string> path = resolve_model_path(argument);
    if (!path.ok()) throw Error(path.status().code(), path.status().message());
    Expected<std::unique_ptr<ModelSource>> source = open_model_source(*path);
    if (!source.ok()) throw Error(source.status().code(), source.status().message());
    std::shared_ptr<ModelSource> opened = std::move(source).value();
    models[argument] = opened;
    return opened;
  }

  void drop_stage() {
    if (!stage) return;
    // Closing the links first wakes a stage waiting for activations that will never
    // come; the stage then fails what it still holds and stops.
    stage->output.close();
    if (stage->receiver) stage->receiver->close();
    if (StageActor* actor = control->stage()) actor->stop();
    // Stopped: its statistics are final, and join those of the stages before it, so
    // the counters only grow.
    refresh_stage_stats();
    {
      std::lock_guard lock(stage_stats_mutex);
      add_counters(dropped_stages, held_stage);
      if (!held_stage.transport.empty()) dropped_stages.transport = held_stage.transport;
      dropped_stages.bubble_ratio = held_stage.bubble_ratio;
      held_stage = StageStats{};
    }
    control->unload_stage();
    stage->results.close();
    // The forwarder may be blocked handing a result to this thread: take (and drop:
    // they are of the stage being dropped) what it sends until it ends.
    zmq::message_t unwanted;
    while (!stage->forwarded_all.load()) {
      if (!results_in.recv(unwanted, zmq::recv_flags::dontwait))
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (stage->forwarder.joinable()) stage->forwarder.join();
    log::info(worker_log(), "released the stage of epoch " + std::to_string(stage->epoch),
              {{"epoch", stage->epoch}});
    stage.reset();
    stage_epoch = 0;
  }

  void assign(const AssignMessage& m) {
    drop_stage();
    auto loaded = std::make_unique<LoadedStage>();
    loaded->epoch = m.epoch;
    StageReadyMessage ready{m.epoch, "", "in-process"};
    try {
      std::shared_ptr<ModelSource> source = model(m.model);
      if (m.layer_end > source->spec().num_layers) {
        fail(ErrorCode::kInvalidArgument,
             "layers beyond the model's " + std::to_string(source->spec().num_layers));
      }
      if (m.stage > 0) {
        Expected<std::unique_ptr<UcxActivationReceiver>> receiver =
            UcxActivationReceiver::listen(options.host, 0);
        if (!receiver.ok()) throw Error(receiver.status().code(), receiver.status().message());
        ready.receiver_address = (*receiver)->address();
        ready.transport = (*receiver)->describe();
        loaded->receiver = std::move(receiver).value();
      }
      ActivationChannel* output = m.stage + 1 < m.stages ? &loaded->output : nullptr;
      StageAssignment assignment{{m.layer_begin, m.layer_end}, {m.kv_blocks, m.block_size}};
      assignment.kv.swap = {m.host_swap_blocks, m.disk_swap_blocks, m.disk_dir};
      control->load_stage(*source, assignment, loaded->receiver.get(), output, loaded->results);
    } catch (const std::exception& e) {  // Error, and what a loader or allocator throws
      log::error(worker_log(),
                 "cannot load layers " + std::to_string(m.layer_begin) + "-" +
                     std::to_string(m.layer_end - 1) + ": " + e.what(),
                 {{"epoch", m.epoch}, {"stage", m.stage + 1}});
      control->unload_stage();
      send(StageFailedMessage{m.epoch, e.what()});
      return;
    }
    LoadedStage* raw = loaded.get();
    loaded->forwarder = std::thread([this, raw] { forward_results(*raw); });
    stage = std::move(loaded);
    stage_epoch = m.epoch;
    log::info(worker_log(),
              "epoch " + std::to_string(m.epoch) + ": stage " + std::to_string(m.stage + 1) + "/" +
                  std::to_string(m.stages) + ", layers " + std::to_string(m.layer_begin) + "-" +
                  std::to_string(m.layer_end - 1) + ", " + std::to_string(m.kv_blocks) +
                  " KV blocks" +
                  (ready.receiver_address.empty()
                       ? ""
                       : ", receiving at " + ready.receiver_address + " (" + ready.transport + ")"),
              {{"epoch", m.epoch}, {"stage", m.stage + 1}});
    send(ready);
  }

  void link(const LinkMessage& m) {
    if (!stage || stage->epoch != m.epoch) {
      ++stale;
      return;
    }
    Expected<std::unique_ptr<UcxActivationSender>> sender =
        UcxActivationSender::connect(m.next_address, std::chrono::seconds(10));
    if (!sender.ok()) {
      log::error(
          worker_log(),
          "cannot reach the next stage at " + m.next_address + ": " + sender.status().to_string(),
          {{"epoch", m.epoch}});
      send(StageFailedMessage{m.epoch, sender.status().to_string()});
      return;
    }
    const std::string transport = lanes_of((*sender)->describe());
    (*sender)->set_epoch(m.epoch);
    log::info(worker_log(),
              "epoch " + std::to_string(m.epoch) + ": sending activations to " + m.next_address +
                  " over " + transport,
              {{"epoch", m.epoch}});
    stage->output.attach(std::move(sender).value());
    send(LinkedMessage{m.epoch});
  }

  void step(StepMessage& m) {
    if (!stage || stage->epoch != m.epoch || control->stage() == nullptr) {
      ++stale;
      // Said, not just dropped: a coordinator that still counts on this stage would
      // otherwise wait for the step's result for ever.
      send(StageFailedMessage{m.epoch,
                              "this worker holds no stage of epoch " + std::to_string(m.epoch)});
      return;
    }
    Expected<StepPlan> plan = decode_step_plan(m.plan);
    if (!plan.ok()) {
      log::limited(refused_messages(), "step plan", worker_log(), log::Level::kWarn,
                   "refused a step plan: " + plan.status().to_string(), {{"epoch", m.epoch}});
      send(StageFailedMessage{m.epoch, plan.status().to_string()});
      return;
    }
    ++steps;
    control->stage()->submit(std::make_shared<const StepPlan>(std::move(plan).value()));
  }

  // On the forwarder thread: the stage's results, encoded, to the main loop (which
  // alone may use the DEALER).
  void forward_results(LoadedStage& s) {
    zmq::socket_t push(context, zmq::socket_type::push);
    push.set(zmq::sockopt::linger, 0);
    push.connect(results_endpoint);
    while (auto out = s.results.receive()) {
      StepResultMessage message{s.epoch, encode_step_output(*out)};
      const std::vector<std::uint8_t> bytes = encode_control(message);
      (void)push.send(zmq::buffer(bytes), zmq::send_flags::none);
    }
    s.forwarded_all.store(true);
  }

  void handle(ControlMessage message) {
    last_heard = Clock::now();
    if (auto* welcome = std::get_if<WelcomeMessage>(&message)) {
      if (registered && welcome->coordinator_incarnation == coordinator_incarnation) return;
      registered = true;
      coordinator_incarnation = welcome->coordinator_incarnation;
      heartbeat = std::chrono::milliseconds(welcome->heartbeat_ms);
      liveness = std::chrono::milliseconds(welcome->liveness_ms);
      log::info(worker_log(), "registered with the coordinator at " + options.coordinator);
    } else if (auto* beat = std::get_if<CoordinatorHeartbeatMessage>(&message)) {
      if (registered && beat->coordinator_incarnation != coordinator_incarnation) {
        log::warn(worker_log(), "the coordinator restarted: registering again");
        drop_stage();
        registered = false;
      }
    } else if (auto* a = std::get_if<AssignMessage>(&message)) {
      assign(*a);
    } else if (auto* l = std::get_if<LinkMessage>(&message)) {
      link(*l);
    } else if (auto* s = std::get_if<StepMessage>(&message)) {
      step(*s);
    } else if (auto* r = std::get_if<ReleaseMessage>(&message)) {
      if (stage && stage->epoch == r->epoch) drop_stage();
    } else if (std::holds_alternative<ShutdownMessage>(message)) {
      throw ShutdownMessage{};
    } else {
      log::limited(refused_messages(), "ignored", worker_log(), log::Level::kWarn,
                   std::string("ignored a ") + control_message_name(message) + " message");
    }
  }
};

WorkerAgent::WorkerAgent(WorkerAgentOptions options) : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.options = std::move(options);
  s.name = s.options.name.empty() ? default_node_name() : s.options.name;
  // A worker process runs one agent: every line it logs, of any module, names it.
  log::set_process_field("worker", s.name);
  log::set_process_field("incarnation", hex_incarnation(s.incarnation));

  Expected<TcpEndpoint> coordinator = parse_tcp_endpoint(s.options.coordinator);
  if (!coordinator.ok()) throw Error(coordinator.status().code(), coordinator.status().message());
  if (s.options.host.empty()) {
    Expected<std::string> host = local_address_towards(*coordinator);
    if (!host.ok()) throw Error(host.status().code(), host.status().message());
    s.options.host = *host;
  }
  BackendRequest backend = s.options.backend;
  backend.threads = s.options.threads;
  s.control = std::make_unique<WorkerControl>(make_backend(backend));
  const bool device = s.control->backend().capabilities().device_memory;
  if (s.options.memory_bytes == 0) {
    // On a GPU: the pool's free memory less room for the activations of large steps
    // (the planner fills what is registered with weights and K/V).
    const std::uint64_t free_bytes = s.control->backend().memory_info().available_bytes;
    const std::uint64_t reserve = std::max<std::uint64_t>(1ull << 30, free_bytes / 10);
    s.options.memory_bytes =
        !device ? default_memory() : (free_bytes > reserve ? free_bytes - reserve : 0);
  }
  s.device_kind = device ? "cuda" : "cpu";
  const int threads = s.options.threads > 0
                          ? s.options.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  s.speed = measure_cpu_gflops(threads);
}

WorkerAgentCounters WorkerAgent::counters() const {
  const State& s = *state_;
  return {s.steps.load(), s.stale.load(), s.registered.load(), s.stage_epoch.load(),
          s.stage_stats()};
}

WorkerAgent::~WorkerAgent() {
  state_->drop_stage();
}

int WorkerAgent::run() {
  State& s = *state_;
  s.results_endpoint = "inproc://worker-results";
  s.results_in.bind(s.results_endpoint);
  // A routing id of its own (name and incarnation) keeps the worker's address at the
  // coordinator the same across reconnections.
  s.dealer.set(zmq::sockopt::routing_id, s.name + "/" + hex_incarnation(s.incarnation));
  s.dealer.set(zmq::sockopt::linger, 0);
  s.dealer.set(zmq::sockopt::sndhwm, 10000);
  s.dealer.set(zmq::sockopt::rcvhwm, 10000);
  if (s.options.configure_socket) s.options.configure_socket(s.dealer);
  s.dealer.connect(s.options.coordinator);
  log::info(worker_log(), "connecting to " + s.options.coordinator + " (" +
                              s.control->backend().name() + ", " +
                              std::to_string(s.options.memory_bytes >> 20) + " MiB, " +
                              std::to_string(static_cast<int>(s.speed)) +
                              " GFLOP/s measured; activations on " + s.options.host + ")");

  Clock::time_point next_beat = Clock::now();
  try {
    while (true) {
      if (s.options.stop != nullptr && s.options.stop->load()) {
        log::info(worker_log(), "stopping: handing the stage back");
        if (s.registered) s.send(LeavingMessage{"the worker is stopping"});
        s.drop_stage();
        // Give the goodbye a moment to leave before the socket closes.
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        return 0;
      }
      const Clock::time_point now = Clock::now();
      if (now >= next_beat) {
        s.refresh_stage_stats();
        if (s.registered) {
          s.send(WorkerHeartbeatMessage{s.incarnation, s.stage ? s.stage->epoch : 0, s.steps});
        } else {
          s.send(RegisterMessage{s.name, s.incarnation, s.control->backend().name(), s.device_kind,
                                 s.options.memory_bytes, s.speed, s.options.host});
        }
        next_beat = now + s.heartbeat;
      }
      if (s.registered && now - s.last_heard > s.liveness) {
        log::warn(worker_log(),
                  "the coordinator is silent: dropping the stage and registering again");
        s.drop_stage();
        s.registered = false;
        next_beat = now;
        continue;
      }
      zmq::pollitem_t items[] = {{s.dealer.handle(), 0, ZMQ_POLLIN, 0},
                                 {s.results_in.handle(), 0, ZMQ_POLLIN, 0}};
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_beat - now);
      try {
        zmq::poll(items, 2,
                  std::clamp(wait, std::chrono::milliseconds(1), std::chrono::milliseconds(100)));
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;  // a signal: `stop` may be set now
        throw;
      }
      zmq::message_t frame;
      while (s.results_in.recv(frame, zmq::recv_flags::dontwait)) {
        (void)s.dealer.send(frame, zmq::send_flags::dontwait);
      }
      while (s.dealer.recv(frame, zmq::recv_flags::dontwait)) {
        Expected<ControlMessage> message =
            decode_control({static_cast<const std::uint8_t*>(frame.data()), frame.size()});
        if (!message.ok()) {
          log::limited(refused_messages(), "control message", worker_log(), log::Level::kWarn,
                       "refused a message from the coordinator: " + message.status().to_string());
          continue;
        }
        s.handle(std::move(message).value());
        // Time spent handling it (loading a stage) is not the coordinator's silence.
        s.last_heard = Clock::now();
      }
    }
  } catch (const ShutdownMessage&) {
    log::info(worker_log(), "the coordinator asked to shut down");
    s.drop_stage();
    return 0;
  }
}

}  // namespace conveyor
