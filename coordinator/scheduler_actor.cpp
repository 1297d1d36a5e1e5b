#include "coordinator/scheduler_actor.h"

#include <algorithm>
#include <optional>
#include <random>

#include "common/tokenizer/stream_decoder.h"
#include "coordinator/scheduler/prefix_hash.h"
#include "worker/sampling/stop_checker.h"

namespace conveyor {

struct SchedulerActor::Group {
  EngineRequest request;
  EngineResult result;
  std::vector<SequenceId> sequences;  // one per choice
  std::int32_t unfinished = 0;
  bool failed = false;  // a choice failed: the request fails, its other choices are dropped
  bool sampled = false;
  bool scheduled = false;       // some choice was in a step: a lost replica ran it
  std::uint64_t base_seed = 0;  // choice c draws with choice_seed(base_seed, c)
};

struct SchedulerActor::Sequence {
  Sequence(SequenceId id_in, std::shared_ptr<Group> group_in, std::int32_t choice_in,
           std::shared_ptr<const SequenceSampling> sampling_in,
           std::span<const std::int64_t> eos_ids, const Tokenizer* tokenizer)
      : id(id_in),
        group(std::move(group_in)),
        choice(choice_in),
        context(group->request.prompt),
        sampling(std::move(sampling_in)),
        stop(sampling->params, eos_ids) {
    if (tokenizer != nullptr) decoder.emplace(*tokenizer);
  }

  SequenceId id;
  std::shared_ptr<Group> group;
  std::int32_t choice;
  std::vector<std::int32_t> context;  // prompt, then every sampled token
  std::shared_ptr<const SequenceSampling> sampling;
  StopChecker stop;
  std::optional<StreamDecoder> decoder;
  EngineChoice out;
  std::optional<SteadyClock::time_point> last_token;  // for the inter-token latency
};

namespace {

double seconds_between(SteadyClock::time_point a, SteadyClock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The seed of choice `c` of a request seeded `seed`: the seed itself for the first
// choice (so n = 1 gives what the seed promises), a hash of both for the others, so
// that choice 1 of seed 7 is not the same draw as choice 0 of seed 8.
std::uint64_t choice_seed(std::uint64_t seed, std::int32_t c) {
  if (c == 0) return seed;
  return splitmix64_mix(seed + 0x9e3779b97f4a7c15ull * static_cast<std::uint64_t>(c));
}

std::uint64_t random_seed() {
  static thread_local std::mt19937_64 generator{std::random_device{}()};
  return generator();
}

}  // namespace

SchedulerActor::SchedulerActor(StepRunner& runner, SchedulerActorOptions options)
    : runner_(runner), options_(std::move(options)), scheduler_(options_.scheduler) {
  if (options_.lookahead <= 0) options_.lookahead = 2 * options_.scheduler.max_sequences;
  if (options_.context_limit <= 0) options_.context_limit = INT64_MAX;
  if (options_.tokenizer != nullptr) {
    // End-of-turn tokens (<|im_end|>, <|eot_id|>) end a chat answer like EOS does.
    for (std::int32_t id : options_.tokenizer->end_of_generation_ids())
      options_.eos_ids.push_back(id);
  }
  std::sort(options_.eos_ids.begin(), options_.eos_ids.end());
  options_.eos_ids.erase(std::unique(options_.eos_ids.begin(), options_.eos_ids.end()),
                         options_.eos_ids.end());
}

SchedulerActor::~SchedulerActor() = default;

Status SchedulerActor::validate(const EngineRequest& request) const {
  if (request.prompt.empty()) return Status(ErrorCode::kInvalidArgument, "empty prompt");
  for (std::int32_t id : request.prompt) {
    if (id < 0 || id >= options_.vocab_size) {
      return Status(ErrorCode::kInvalidArgument, "prompt token " + std::to_string(id) +
                                                     " is outside the vocabulary of " +
                                                     std::to_string(options_.vocab_size));
    }
  }
  if (request.n < 1) return Status(ErrorCode::kInvalidArgument, "n must be at least 1");
  if (Status s = request.sampling.validate(options_.vocab_size); !s.ok()) return s;
  const auto prompt = static_cast<std::int64_t>(request.prompt.size());
  if (prompt >= options_.context_limit) {
    return Status(ErrorCode::kOutOfRange, "prompt of " + std::to_string(prompt) +
                                              " tokens does not fit the context of " +
                                              std::to_string(options_.context_limit) + " tokens");
  }
  return {};
}

std::vector<BlockHash> SchedulerActor::prompt_block_hashes(
    std::span<const std::int32_t> prompt) const {
  if (!options_.scheduler.prefix_caching) return {};
  return conveyor::prompt_block_hashes(prompt, options_.scheduler.block_size);
}

void SchedulerActor::add(EngineRequest request, const ResultCallback& on_result) {
  if (options_.on_take) options_.on_take(request.key);
  auto group = std::make_shared<Group>();
  group->result.key = request.key;
  group->result.origin = request.origin;
  group->result.prompt_tokens = static_cast<std::int64_t>(request.prompt.size());
  group->request = std::move(request);
  const EngineRequest& r = group->request;
  Status status = r.cancelled && r.cancelled->load()
                      ? Status(ErrorCode::kCancelled, "the job was cancelled")
                      : validate(r);
  const std::int64_t prompt = group->result.prompt_tokens;
  const std::int64_t longest = std::min(prompt + r.sampling.max_tokens, options_.context_limit);
  const std::uint64_t base_seed = r.sampling.seed ? *r.sampling.seed : random_seed();
  group->base_seed = base_seed;
  const RequestProgress* progress = r.progress.get();
  if (status.ok() && progress != nullptr &&
      progress->choices.size() != static_cast<std::size_t>(r.n)) {
    status = Status(ErrorCode::kInternal, "handed-back request with a progress of the wrong size");
  }
  group->result.choices.resize(static_cast<std::size_t>(std::max(r.n, 0)));
  if (progress != nullptr && progress->first_token_seconds >= 0) {
    group->sampled = true;
    group->result.first_token_seconds = progress->first_token_seconds;
  }

  std::vector<SequenceId> added;
  std::int32_t finished_before = 0;
  for (std::int32_t c = 0; status.ok() && c < r.n; ++c) {
    const RequestProgress::Choice* earlier =
        progress != nullptr ? &progress->choices[static_cast<std::size_t>(c)] : nullptr;
    if (earlier != nullptr && earlier->finished) {
      group->result.choices[static_cast<std::size_t>(c)] = earlier->output;
      ++finished_before;
      continue;
    }
    auto sampling = std::make_shared<SequenceSampling>();
    sampling->params = r.sampling;
    sampling->seed = choice_seed(base_seed, c);
    sampling->prompt_tokens = prompt;
    const SequenceId id = next_sequence_++;
    auto sequence = std::make_unique<Sequence>(id, group, c, std::move(sampling), options_.eos_ids,
                                               options_.tokenizer.get());
    if (earlier != nullptr) replay(*sequence, earlier->samples);
    const auto context = static_cast<std::int64_t>(sequence->context.size());
    status =
        scheduler_.add(id, context, std::max(longest, context + 1), prompt_block_hashes(r.prompt));
    if (!status.ok()) break;
    sequences_[id] = std::move(sequence);
    added.push_back(id);
  }
  if (!status.ok()) {
    for (SequenceId id : added) {
      scheduler_.finish(id);
      sequences_.erase(id);
    }
    group->result.status = status;
    group->result.choices.clear();
    ++stats_.failed;
    if (options_.metrics)
      options_.metrics->request_failed(seconds_between(r.submitted, SteadyClock::now()));
    on_result(std::move(group->result));
    return;
  }
  group->sequences = added;
  group->unfinished = r.n - finished_before;
  if (group->unfinished == 0) {  // every choice had finished where it ran
    group->result.latency_seconds = seconds_between(r.submitted, SteadyClock::now());
    ++stats_.finished;
    record_finished(*group);
    on_result(std::move(group->result));
  }
}

void SchedulerActor::record_finished(const Group& group) {
  if (!options_.metrics) return;
  const std::string reason =
      group.result.choices.empty()
          ? "stop"
          : std::string(to_string(group.result.choices.front().finish_reason));
  options_.metrics->request_finished(reason, group.result.latency_seconds);
}

void SchedulerActor::replay(Sequence& s, const std::vector<SampleResult>& samples) {
  const std::int64_t generated = stats_.generated_tokens;
  for (const SampleResult& sample : samples)
    accept(s, sample, {}, true);
  stats_.generated_tokens = generated;  // counted where they were generated
}

void SchedulerActor::measure_recompute_rate(const Schedule& schedule, double step_seconds) {
  // A recompute is a prefill: only steps that prefilled say how fast that goes. With
  // `depth` steps in flight, the replica computes that many at once.
  const std::int64_t tokens = schedule.tokens();
  if (step_seconds <= 0 || tokens <= static_cast<std::int64_t>(schedule.chunks.size())) return;
  const double rate = static_cast<double>(tokens) * static_cast<double>(depth()) / step_seconds;
  recompute_rate_ = recompute_rate_ > 0 ? 0.8 * recompute_rate_ + 0.2 * rate : rate;
  scheduler_.set_recompute_rate(recompute_rate_);
}

std::int64_t SchedulerActor::depth() const {
  return options_.micro_batches > 0 ? options_.micro_batches : runner_.depth();
}

std::int64_t SchedulerActor::micro_batch_size() const {
  const std::int64_t depth = this->depth();
  if (depth <= 1) return 0;
  // Share the sequences that could run now evenly over the stages' micro-batches.
  const std::int64_t joinable =
      std::min(scheduler_.waiting(),
               std::max<std::int64_t>(0, options_.scheduler.max_sequences - scheduler_.running()));
  const std::int64_t active = std::max<std::int64_t>(1, scheduler_.running() + joinable);
  return (active + depth - 1) / depth;
}

std::shared_ptr<const StepPlan> SchedulerActor::plan_for(Schedule& schedule) {
  auto plan = std::make_shared<StepPlan>();
  plan->step = next_step_++;
  plan->released = std::move(released_);
  released_.clear();
  for (ScheduledChunk& c : schedule.chunks) {
    const Sequence& s = *sequences_.at(c.id);
    if (!s.group->scheduled && options_.metrics) {
      options_.metrics->request_admitted(
          seconds_between(s.group->request.submitted, SteadyClock::now()));
      options_.metrics->prompt_tokens(static_cast<std::int64_t>(s.group->request.prompt.size()));
    }
    s.group->scheduled = true;
    PlannedSequence p;
    p.id = c.id;
    p.tokens.assign(s.context.begin() + c.start, s.context.begin() + c.start + c.tokens);
    p.start = c.start;
    p.block_table = std::move(c.block_table);
    p.samples = c.samples;
    p.sampling = s.sampling;
    if (c.admitted && c.start > 0)
      p.context_before.assign(s.context.begin(), s.context.begin() + c.start);
    plan->sequences.push_back(std::move(p));
    // The last position of a sampling chunk of a sequence that already has output is
    // the token sampled last step, fed back: a decode input, not prefill.
    const bool feeds_back =
        c.samples && static_cast<std::int64_t>(s.context.size()) > s.sampling->prompt_tokens;
    stats_.decode_tokens += feeds_back ? 1 : 0;
    stats_.prefill_tokens += c.tokens - (feeds_back ? 1 : 0);
  }
  for (SequenceId id : schedule.preempted)
    plan->released.push_back(id);  // recomputed from position 0: stages start it over
  plan->swaps = std::move(schedule.swaps);
  return plan;
}

void SchedulerActor::accept(Sequence& s, const SampleResult& sample, const TextCallback& on_text,
                            bool replayed) {
  const std::int32_t token = sample.token;
  s.context.push_back(token);
  s.out.tokens.push_back(token);
  if (s.sampling->params.logprobs) s.out.logprobs.push_back(sample);
  ++stats_.generated_tokens;
  Group& g = *s.group;
  const SteadyClock::time_point now = SteadyClock::now();
  if (!g.sampled) {
    g.sampled = true;
    g.result.first_token_seconds = seconds_between(g.request.submitted, now);
  }
  if (options_.metrics && !replayed) {
    if (s.last_token) {
      options_.metrics->next_token(seconds_between(*s.last_token, now));
    } else {
      options_.metrics->first_token(seconds_between(g.request.submitted, now));
    }
  }
  s.last_token = now;
  const std::string piece = s.decoder ? s.decoder->push(token) : std::string();
  StopUpdate update = s.stop.on_token(token, piece);
  if (!update.finish_reason &&
      static_cast<std::int64_t>(s.context.size()) >= options_.context_limit) {
    update = s.stop.finish(FinishReason::kLength);
  }
  if (on_text && !update.released.empty()) on_text(g.request.key, s.choice, update.released);
}

void SchedulerActor::finish_sequence(Sequence& s, const ResultCallback& on_result) {
  s.out.finish_reason = *s.stop.finish_reason();
  s.out.text = std::string(s.stop.text());
  s.group->result.choices[static_cast<std::size_t>(s.choice)] = std::move(s.out);
  retire(s, on_result);
}

void SchedulerActor::fail_request(Sequence& s, const Status& status,
                                  const ResultCallback& on_result) {
  std::shared_ptr<Group> group = s.group;
  const SequenceId failed = s.id;  // `s` may be gone after its retire()
  group->failed = true;
  group->result.status = status;
  // Its other choices leave now, except those in a step in flight: they leave when
  // that step comes back.
  for (SequenceId id : group->sequences) {
    auto other = sequences_.find(id);
    if (other != sequences_.end() && (id == failed || !scheduler_.is_in_flight(id)))
      retire(*other->second, on_result);
  }
}

void SchedulerActor::retire(Sequence& s, const ResultCallback& on_result) {
  scheduler_.finish(s.id);
  released_.push_back(s.id);
  std::shared_ptr<Group> group = s.group;
  sequences_.erase(s.id);
  if (--group->unfinished > 0) return;
  group->result.latency_seconds = seconds_between(group->request.submitted, SteadyClock::now());
  if (group->failed) {
    group->result.choices.clear();
    ++stats_.failed;
    if (options_.metrics) options_.metrics->request_failed(group->result.latency_seconds);
  } else {
    ++stats_.finished;
    record_finished(*group);
  }
  on_result(std::move(group->result));
}

void SchedulerActor::apply(const StepOutput& output, const ResultCallback& on_result,
                           const TextCallback& on_text) {
  if (!output.status.ok()) {
    in_flight_.erase(output.step);  // it will not come back
    throw Error(output.status.code(), output.status.message());
  }
  auto it = in_flight_.find(output.step);
  if (it == in_flight_.end()) {
    fail(ErrorCode::kInternal,
         "result for step " + std::to_string(output.step) + " that is not in flight");
  }
  const Schedule schedule = std::move(it->second.schedule);
  const double step_seconds = seconds_between(it->second.submitted, SteadyClock::now());
  stats_.step_seconds += step_seconds;
  measure_recompute_rate(schedule, step_seconds);
  if (options_.metrics) {
    options_.metrics->step(schedule.tokens(), static_cast<std::int64_t>(schedule.chunks.size()),
                           step_seconds);
  }
  in_flight_.erase(it);
  scheduler_.complete(schedule);
  ++stats_.steps;
  for (const SampledToken& t : output.samples) {
    auto s = sequences_.find(t.id);
    if (s == sequences_.end()) {
      // A sibling of a choice that failed earlier in this output has left with it.
      if (std::find(released_.begin(), released_.end(), t.id) != released_.end()) continue;
      fail(ErrorCode::kInternal, "token for unknown sequence " + std::to_string(t.id));
    }
    Sequence& sequence = *s->second;
    if (sequence.group->failed) {
      retire(sequence, on_result);  // a sibling choice failed while this one ran
    } else if (!t.status.ok()) {
      fail_request(sequence, t.status, on_result);
    } else {
      accept(sequence, t.sample, on_text);
      if (sequence.stop.finished()) finish_sequence(sequence, on_result);
    }
  }
  // Choices of a failed request that were in this step without sampling (a prefill
  // chunk) leave now too, rather than run on to their first token.
  for (const ScheduledChunk& c : schedule.chunks) {
    auto s = sequences_.find(c.id);
    if (s != sequences_.end() && s->second->group->failed) retire(*s->second, on_result);
  }
}

void SchedulerActor::run(Channel<EngineRequest>& requests, const ResultCallback& on_result,
                         const StepCallback& on_step, const TextCallback& on_text) {
  try {
    loop(requests, on_result, on_step, on_text);
  } catch (...) {
    abandon();
    throw;
  }
}

bool SchedulerActor::run_until_lost(Channel<EngineRequest>& requests,
                                    const ResultCallback& on_result,
                                    const HandBackCallback& on_hand_back,
                                    const StepCallback& on_step) {
  Status cause;
  try {
    loop(requests, on_result, on_step, {});
    return true;
  } catch (const Error& e) {
    cause = e.status();
  } catch (const std::exception& e) {
    cause = Status(ErrorCode::kInternal, e.what());
  }
  // Whatever stopped this replica (a lost worker, or a broken invariant here), its
  // requests are not lost with it: another replica takes them, and a request that
  // keeps failing runs out of hand-backs.
  lost_because_ = cause;
  hand_back(on_result, on_hand_back);
  return false;
}

void SchedulerActor::hand_back(const ResultCallback& on_result,
                               const HandBackCallback& on_hand_back) {
  abandon_steps();
  std::map<const Group*, std::shared_ptr<Group>> groups;
  for (const auto& [id, sequence] : sequences_)
    groups.emplace(sequence->group.get(), sequence->group);
  for (auto& [key, group] : groups) {
    if (group->failed) {  // it fails as it would have; its other choices do not matter
      group->result.choices.clear();
      ++stats_.failed;
      on_result(std::move(group->result));
      continue;
    }
    auto progress = std::make_shared<RequestProgress>();
    progress->choices.resize(group->result.choices.size());
    progress->first_token_seconds = group->sampled ? group->result.first_token_seconds : -1;
    for (std::size_t c = 0; c < progress->choices.size(); ++c) {
      progress->choices[c].finished = true;
      progress->choices[c].output = group->result.choices[c];
    }
    for (SequenceId id : group->sequences) {
      auto s = sequences_.find(id);
      if (s == sequences_.end()) continue;  // finished: its output is in the result
      RequestProgress::Choice& choice =
          progress->choices[static_cast<std::size_t>(s->second->choice)];
      choice.finished = false;
      choice.output = {};
      const ChoiceOutput& out = s->second->out;
      for (std::size_t i = 0; i < out.tokens.size(); ++i) {
        SampleResult sample = i < out.logprobs.size() ? out.logprobs[i] : SampleResult{};
        sample.token = out.tokens[i];
        choice.samples.push_back(std::move(sample));
      }
    }
    EngineRequest request = group->request;
    request.sampling.seed = group->base_seed;
    request.progress = std::move(progress);
    // Only a replica that ran the request counts against it: one that was merely
    // holding it ahead of admission says nothing about the request.
    if (group->scheduled) ++request.hand_backs;
    on_hand_back(std::move(request));
  }
  sequences_.clear();
  released_.clear();
  scheduler_ = Scheduler(options_.scheduler);
}

void SchedulerActor::abandon_steps() {
  while (!in_flight_.empty()) {
    const StepOutput out = runner_.next_result();
    // A failed step, or a result for no step in flight, means the runner has
    // stopped: nothing more will come back.
    if (!out.status.ok() || in_flight_.erase(out.step) == 0) break;
  }
  in_flight_.clear();
}

void SchedulerActor::abandon() {
  abandon_steps();
  // The stages still hold state for these sequences, and cached blocks in their tiers:
  // the next plan releases them.
  for (const auto& [id, sequence] : sequences_)
    released_.push_back(id);
  for (SequenceId id : scheduler_.tier_cached_ids())
    released_.push_back(id);
  sequences_.clear();
  scheduler_ = Scheduler(options_.scheduler);
}

void SchedulerActor::loop(Channel<EngineRequest>& requests, const ResultCallback& on_result,
                          const StepCallback& on_step, const TextCallback& on_text) {
  started_ = SteadyClock::now();
  bool input_open = true;
  std::optional<SteadyClock::time_point> result_arrived;  // until the next submission
  const auto refresh = [&] {
    stats_.preemptions = scheduler_.preemptions();
    stats_.prefix_queried_tokens = scheduler_.prefix_queried_tokens();
    stats_.prefix_hit_tokens = scheduler_.prefix_hit_tokens();
    stats_.running = scheduler_.running();
    stats_.waiting = scheduler_.waiting();
    stats_.seconds = seconds_between(started_, SteadyClock::now());
    stats_.swap_preemptions = scheduler_.swap_preemptions();
    stats_.disk_swap_preemptions = scheduler_.swap_preemptions(KvTierId::kDisk);
    stats_.swapped_blocks = scheduler_.swapped_blocks();
    if (options_.metrics) {
      const SchedulerConfig& config = options_.scheduler;
      EngineState state;
      state.running = stats_.running;
      state.waiting = stats_.waiting;
      state.device = {scheduler_.used_blocks(), config.num_blocks};
      const auto tier_used = [&](KvTierId tier) {
        return scheduler_.swap_used_blocks(tier) + scheduler_.tier_cached_blocks(tier);
      };
      state.host = {tier_used(KvTierId::kHost), config.host_swap_blocks};
      state.disk = {tier_used(KvTierId::kDisk), config.disk_swap_blocks};
      state.recompute_preemptions = stats_.preemptions - stats_.swap_preemptions;
      state.swap_preemptions = stats_.swap_preemptions;
      state.swapped_bytes =
          stats_.swapped_blocks * static_cast<std::int64_t>(config.swap.costs.block_bytes);
      state.prefix_queried = stats_.prefix_queried_tokens;
      state.prefix_hit = stats_.prefix_hit_tokens;
      state.in_flight = !in_flight_.empty();
      options_.metrics->state(state);
    }
  };
  while (true) {
    // A lost runner runs nothing more: leave the requests to other replicas.
    if (runner_.lost()) fail(ErrorCode::kUnavailable, "the pipeline was lost");
    // Take requests ahead of admission, up to the lookahead.
    while (input_open && scheduler_.waiting() < options_.lookahead) {
      auto r = requests.try_receive();
      if (!r) {
        input_open = !requests.finished();
        break;
      }
      add(std::move(*r), on_result);
    }
    // Keep one step in flight per stage.
    while (static_cast<std::int64_t>(in_flight_.size()) < depth()) {
      Schedule schedule = scheduler_.schedule(micro_batch_size());
      if (schedule.empty()) break;
      auto plan = plan_for(schedule);
      const std::uint64_t step = plan->step;
      runner_.submit(std::move(plan));
      const SteadyClock::time_point submitted = SteadyClock::now();
      if (result_arrived) {
        stats_.host_seconds += seconds_between(*result_arrived, submitted);
        ++stats_.host_intervals;
        result_arrived.reset();
      }
      in_flight_.emplace(step, InFlight{std::move(schedule), submitted});
    }
    if (in_flight_.empty()) {
      if (!scheduler_.idle()) {
        fail(ErrorCode::kInternal, "scheduler made no progress with nothing in flight");
      }
      if (!input_open) break;
      // Idle: wait for work, looking up now and then in case the runner was lost.
      auto r = requests.receive_for(std::chrono::milliseconds(100));
      if (!r) {
        input_open = !requests.finished();
        if (!input_open) break;
        continue;
      }
      add(std::move(*r), on_result);
      continue;
    }
    const StepOutput output = runner_.next_result();
    result_arrived = SteadyClock::now();
    apply(output, on_result, on_text);
    refresh();
    if (on_step) on_step(stats_);
  }
  refresh();
}

}  // namespace conveyor
