#include "coordinator/producer/producer_server.h"

#include <algorithm>
#include <cstdio>

#include <zmq_addon.hpp>

namespace conveyor {
namespace {

using Clock = std::chrono::steady_clock;

// Requests handled per turn of the loop before wakes and deadlines are looked at
// again: a flood of SUBMITs must not starve parked FETCHes.
constexpr int kRequestsPerTurn = 256;
// The longest poll: stop() wakes the loop at once anyway; this only bounds how stale
// a deadline check can be if a wake were ever lost.
constexpr int kMaxPollMs = 1000;

std::string hex(std::string_view bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out += digits[b >> 4];
    out += digits[b & 0xf];
  }
  return out;
}

ProducerReply error_reply(std::uint64_t request_id, ErrorCode code, std::string message) {
  ProducerReply r;
  r.kind = ReplyKind::kError;
  r.request_id = request_id;
  r.error = code;
  r.message = std::move(message);
  return r;
}

ProducerReply busy_reply(std::uint64_t request_id, std::uint32_t retry_after_ms,
                         std::string message) {
  ProducerReply r;
  r.kind = ReplyKind::kBusy;
  r.request_id = request_id;
  r.retry_after_ms = retry_after_ms;
  r.message = std::move(message);
  return r;
}

ProducerReply not_found(std::uint64_t request_id, const std::string& job_id) {
  return error_reply(request_id, ErrorCode::kNotFound, "no job " + job_id);
}

}  // namespace

ProducerServer::ProducerServer(zmq::context_t& context, JobService& service,
                               ProducerServerOptions options)
    : context_(context), service_(service), options_(std::move(options)) {}

ProducerServer::~ProducerServer() {
  stop();
}

Status ProducerServer::start() {
  if (thread_.joinable()) return Status(ErrorCode::kInvalidArgument, "server already started");
  try {
    router_ = zmq::socket_t(context_, zmq::socket_type::router);
    router_.set(zmq::sockopt::router_mandatory, 1);
    router_.set(zmq::sockopt::maxmsgsize, options_.max_message_bytes);
    router_.set(zmq::sockopt::sndhwm, options_.send_hwm);
    router_.set(zmq::sockopt::rcvhwm, options_.receive_hwm);
    router_.set(zmq::sockopt::linger, 0);
    if (options_.configure_socket) options_.configure_socket(router_);
    router_.bind(options_.endpoint);
    bound_endpoint_ = router_.get(zmq::sockopt::last_endpoint);

    // Each server has its own wake address: several may share a context (tests).
    char address[64];
    std::snprintf(address, sizeof(address), "inproc://conveyor-producer-wake-%p",
                  static_cast<void*>(this));
    wake_receiver_ = zmq::socket_t(context_, zmq::socket_type::pair);
    wake_receiver_.bind(address);
    std::lock_guard lock(wake_mutex_);
    wake_sender_ = zmq::socket_t(context_, zmq::socket_type::pair);
    wake_sender_.set(zmq::sockopt::linger, 0);
    wake_sender_.connect(address);
  } catch (const zmq::error_t& e) {
    router_.close();
    wake_receiver_.close();
    const ErrorCode code = e.num() == EADDRINUSE || e.num() == EADDRNOTAVAIL || e.num() == EACCES
                               ? ErrorCode::kUnavailable
                               : ErrorCode::kInvalidArgument;
    return Status(code, "producer server cannot bind " + options_.endpoint + ": " + e.what());
  } catch (const Error& e) {  // from configure_socket: keys libzmq refuses, no CURVE
    router_.close();
    wake_receiver_.close();
    return e.status();
  }
  acks_to_drop_ = options_.drop_acks;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
  return {};
}

void ProducerServer::stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  {
    std::lock_guard lock(wake_mutex_);
    (void)wake_sender_.send(zmq::str_buffer("s"), zmq::send_flags::dontwait);
  }
  thread_.join();
  router_.close();
  wake_receiver_.close();
  std::lock_guard lock(wake_mutex_);
  wake_sender_.close();
  parked_.clear();
  parked_count_ = 0;
}

void ProducerServer::notify(const std::string& job_id) {
  std::lock_guard lock(wake_mutex_);
  if (!wake_sender_) return;
  notified_.insert(job_id);
  if (wake_pending_) return;  // the loop has not yet taken the last wake: it sees this too
  wake_pending_ = true;
  (void)wake_sender_.send(zmq::str_buffer("w"), zmq::send_flags::dontwait);
}

ProducerServerCounters ProducerServer::counters() const {
  ProducerServerCounters c;
  c.messages = messages_;
  c.acks = acks_;
  c.duplicates = duplicates_;
  c.busy = busy_;
  c.errors = errors_;
  c.unroutable = unroutable_;
  c.dropped_acks = dropped_acks_;
  c.parked = parked_count_;
  return c;
}

void ProducerServer::run() {
  while (!stopping_) {
    zmq::pollitem_t items[] = {{router_.handle(), 0, ZMQ_POLLIN, 0},
                               {wake_receiver_.handle(), 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 2, std::chrono::milliseconds(poll_timeout_ms()));
      if (items[1].revents & ZMQ_POLLIN) wake_notified();
      if (items[0].revents & ZMQ_POLLIN) receive_pending();
      expire_parked();
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) return;  // the context is going away
      // Anything else is one failed operation (already counted where it happened);
      // the loop goes on, since a dead producer server loses every producer.
    }
  }
}

int ProducerServer::poll_timeout_ms() const {
  if (parked_.empty()) return kMaxPollMs;
  auto first = parked_.front().deadline;
  for (const ParkedFetch& p : parked_)
    first = std::min(first, p.deadline);
  const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(first - Clock::now());
  return static_cast<int>(std::clamp<std::int64_t>(wait.count() + 1, 0, kMaxPollMs));
}

void ProducerServer::receive_pending() {
  for (int i = 0; i < kRequestsPerTurn && !stopping_; ++i) {
    std::vector<zmq::message_t> parts;
    const auto received =
        zmq::recv_multipart(router_, std::back_inserter(parts), zmq::recv_flags::dontwait);
    if (!received || parts.empty()) return;
    ++messages_;
    const std::string identity = parts[0].to_string();
    std::vector<std::string_view> frames;
    frames.reserve(parts.size() - 1);
    for (std::size_t p = 1; p < parts.size(); ++p)
      frames.push_back(parts[p].to_string_view());
    handle(identity, frames);
  }
}

void ProducerServer::handle(const std::string& identity, std::span<const std::string_view> frames) {
  Expected<ProducerRequest> request = decode_request(frames);
  if (!request.ok()) {
    reply(identity, error_reply(peek_request_id(frames), request.status().code(),
                                request.status().message()));
    return;
  }
  try {
    switch (request->verb) {
      case ProducerVerb::kSubmit:
        handle_submit(identity, *request);
        return;
      case ProducerVerb::kFetch:
        handle_fetch(identity, *request);
        return;
      default:
        reply(identity, answer(*request));
        return;
    }
  } catch (const zmq::error_t&) {
    throw;
  } catch (const Error& e) {
    reply(identity, error_reply(request->request_id, e.code(), e.what()));
  } catch (const std::exception& e) {
    reply(identity, error_reply(request->request_id, ErrorCode::kInternal, e.what()));
  }
}

void ProducerServer::handle_submit(const std::string& identity, const ProducerRequest& request) {
  SubmitChunk chunk;
  chunk.job_id = request.job_id;
  chunk.chunk = request.chunk;
  chunk.final = request.final;
  chunk.lines = request.lines;
  chunk.producer = hex(identity);
  const SubmitReply outcome = service_.submit(chunk);

  ProducerReply r;
  r.request_id = request.request_id;
  switch (outcome.outcome) {
    case SubmitOutcome::kAccepted:
    case SubmitOutcome::kDuplicate:
      r.kind =
          outcome.outcome == SubmitOutcome::kAccepted ? ReplyKind::kAck : ReplyKind::kDuplicate;
      r.job_id = request.job_id;
      r.chunk = request.chunk;
      if (acks_to_drop_ > 0) {
        --acks_to_drop_;
        ++dropped_acks_;
        count(r);
        return;
      }
      break;
    case SubmitOutcome::kBusy:
      r = busy_reply(request.request_id, outcome.retry_after_ms, outcome.message);
      break;
    case SubmitOutcome::kRejected:
      r = error_reply(request.request_id, ErrorCode::kInvalidArgument, outcome.message);
      break;
  }
  reply(identity, r);
}

void ProducerServer::handle_fetch(const std::string& identity, const ProducerRequest& request) {
  const std::size_t max_records =
      std::clamp<std::size_t>(request.max_lines, 1, options_.max_fetch_records);
  FetchReply fetched = service_.fetch(request.job_id, request.offset, max_records);
  const std::uint32_t wait_ms = std::min(request.wait_ms, options_.max_wait_ms);
  if (!fetched.found || !fetched.records.empty() || fetched.job_done || wait_ms == 0) {
    reply(identity, results_reply(request.request_id, request.job_id, std::move(fetched)));
    return;
  }
  if (parked_.size() >= options_.max_parked_fetches) {
    reply(identity, busy_reply(request.request_id, options_.busy_retry_after_ms,
                               "too many FETCHes are waiting"));
    return;
  }
  parked_.push_back({identity, request.request_id, request.job_id, request.offset, max_records,
                     Clock::now() + std::chrono::milliseconds(wait_ms)});
  parked_count_ = parked_.size();
}

ProducerReply ProducerServer::answer(const ProducerRequest& request) {
  ProducerReply r;
  r.request_id = request.request_id;
  switch (request.verb) {
    case ProducerVerb::kStatus: {
      JobStatusReply status = service_.status(request.job_id);
      if (!status.found) return not_found(request.request_id, request.job_id);
      r.kind = ReplyKind::kStatus;
      r.status = std::move(status);
      return r;
    }
    case ProducerVerb::kCancel:
    case ProducerVerb::kRelease: {
      const Status done = request.verb == ProducerVerb::kCancel ? service_.cancel(request.job_id)
                                                                : service_.release(request.job_id);
      if (!done.ok()) return error_reply(request.request_id, done.code(), done.message());
      r.kind = ReplyKind::kOk;
      return r;
    }
    default:
      return error_reply(request.request_id, ErrorCode::kInternal, "verb not routed");
  }
}

ProducerReply ProducerServer::results_reply(std::uint64_t request_id, const std::string& job_id,
                                            FetchReply fetched) {
  if (!fetched.found) return not_found(request_id, job_id);
  ProducerReply r;
  r.kind = ReplyKind::kResults;
  r.request_id = request_id;
  r.results = std::move(fetched);
  return r;
}

void ProducerServer::wake_notified() {
  zmq::message_t ignored;
  while (wake_receiver_.recv(ignored, zmq::recv_flags::dontwait)) {
  }
  std::unordered_set<std::string> jobs;
  {
    std::lock_guard lock(wake_mutex_);
    jobs.swap(notified_);
    wake_pending_ = false;
  }
  if (jobs.empty() || parked_.empty()) return;
  std::vector<ParkedFetch> still_parked;
  for (ParkedFetch& p : parked_) {
    if (!jobs.contains(p.job_id)) {
      still_parked.push_back(std::move(p));
      continue;
    }
    FetchReply fetched = service_.fetch(p.job_id, p.offset, p.max_records);
    if (fetched.found && fetched.records.empty() && !fetched.job_done) {
      still_parked.push_back(std::move(p));  // notified, but nothing past this offset yet
      continue;
    }
    reply(p.identity, results_reply(p.request_id, p.job_id, std::move(fetched)));
  }
  parked_.swap(still_parked);
  parked_count_ = parked_.size();
}

void ProducerServer::expire_parked() {
  if (parked_.empty()) return;
  const auto now = Clock::now();
  std::vector<ParkedFetch> still_parked;
  for (ParkedFetch& p : parked_) {
    if (p.deadline > now) {
      still_parked.push_back(std::move(p));
      continue;
    }
    reply(p.identity,
          results_reply(p.request_id, p.job_id, service_.fetch(p.job_id, p.offset, p.max_records)));
  }
  parked_.swap(still_parked);
  parked_count_ = parked_.size();
}

void ProducerServer::count(const ProducerReply& r) {
  switch (r.kind) {
    case ReplyKind::kAck:
      ++acks_;
      break;
    case ReplyKind::kDuplicate:
      ++acks_;
      ++duplicates_;
      break;
    case ReplyKind::kBusy:
      ++busy_;
      break;
    case ReplyKind::kError:
      ++errors_;
      break;
    default:
      break;
  }
}

void ProducerServer::reply(const std::string& identity, const ProducerReply& r) {
  count(r);
  Frames frames;
  try {
    frames = encode_reply(r);
  } catch (const Error& e) {
    frames = encode_reply(error_reply(r.request_id, e.code(), e.what()));
  }
  send(identity, frames);
}

void ProducerServer::send(const std::string& identity, const Frames& frames) {
  try {
    // With ROUTER_MANDATORY the identity frame fails at once (EHOSTUNREACH: gone;
    // EAGAIN: its queue is full) instead of the reply vanishing or the loop blocking.
    if (!router_.send(zmq::buffer(identity),
                      zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      ++unroutable_;
      return;
    }
    for (std::size_t i = 0; i < frames.size(); ++i) {
      const auto more = i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
      (void)router_.send(zmq::buffer(frames[i]), more | zmq::send_flags::dontwait);
    }
  } catch (const zmq::error_t& e) {
    if (e.num() == ETERM) throw;
    ++unroutable_;
  }
}

}  // namespace conveyor
