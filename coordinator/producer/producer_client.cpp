#include "coordinator/producer/producer_client.h"

#include <algorithm>
#include <thread>

#include <zmq_addon.hpp>

namespace conveyor {
namespace {

using Clock = std::chrono::steady_clock;

Status reply_error(const ProducerReply& reply) {
  return Status(reply.error, "coordinator: " + reply.message);
}

std::size_t frames_size(const Frames& frames) {
  std::size_t n = 0;
  for (const std::string& f : frames)
    n += f.size();
  return n;
}

}  // namespace

ProducerClient::ProducerClient(zmq::context_t& context, ProducerClientOptions options)
    : context_(context), options_(std::move(options)), random_(std::random_device{}()) {
  // Random first id: a reply meant for another client instance (or an earlier run)
  // can never match.
  next_request_id_ = random_() | 1;
}

Status ProducerClient::open() {
  try {
    socket_ = zmq::socket_t(context_, zmq::socket_type::dealer);
    socket_.set(zmq::sockopt::linger, 0);  // closing never waits for unsent requests
    if (options_.configure_socket) options_.configure_socket(socket_);
    socket_.connect(options_.endpoint);
  } catch (const zmq::error_t& e) {
    socket_.close();
    return Status(ErrorCode::kInvalidArgument,
                  "cannot connect to " + options_.endpoint + ": " + e.what());
  } catch (const Error& e) {  // from configure_socket
    socket_.close();
    return e.status();
  }
  return {};
}

void ProducerClient::sleep_backoff(std::chrono::milliseconds& backoff,
                                   std::chrono::milliseconds at_least) {
  // Full jitter in the upper half: producers that failed together do not retry
  // together.
  const auto half = std::max<std::int64_t>(backoff.count() / 2, 1);
  std::uniform_int_distribution<std::int64_t> pick(half,
                                                   std::max<std::int64_t>(backoff.count(), half));
  const auto wait = std::max(std::chrono::milliseconds(pick(random_)), at_least);
  std::this_thread::sleep_for(wait);
  backoff = std::min(backoff * 2, options_.backoff_max);
}

std::optional<Expected<ProducerReply>> ProducerClient::exchange(const Frames& frames,
                                                                std::uint64_t request_id,
                                                                std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  try {
    // A DEALER blocks when its queue is full; the send timeout turns that into a
    // lost attempt like any other.
    socket_.set(zmq::sockopt::sndtimeo, static_cast<int>(timeout.count()));
    for (std::size_t i = 0; i < frames.size(); ++i) {
      const auto more = i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
      if (!socket_.send(zmq::buffer(frames[i]), more)) return std::nullopt;
    }
    while (true) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return std::nullopt;
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, left) == 0) return std::nullopt;
      std::vector<zmq::message_t> parts;
      if (!zmq::recv_multipart(socket_, std::back_inserter(parts), zmq::recv_flags::dontwait)) {
        continue;
      }
      std::vector<std::string_view> views;
      for (const zmq::message_t& p : parts)
        views.push_back(p.to_string_view());
      Expected<ProducerReply> reply = decode_reply(views);
      if (reply.ok() && reply->request_id != request_id) {
        ++stats_.stale;  // an answer to an attempt this socket already gave up on
        continue;
      }
      if (!reply.ok()) {
        return Expected<ProducerReply>(
            Status(reply.status().code(),
                   "unreadable reply from " + options_.endpoint + ": " + reply.status().message()));
      }
      return reply;
    }
  } catch (const zmq::error_t& e) {
    return Expected<ProducerReply>(Status(
        ErrorCode::kUnavailable, "ZeroMQ error talking to " + options_.endpoint + ": " + e.what()));
  }
}

Expected<ProducerReply> ProducerClient::call(ProducerRequest request,
                                             std::chrono::milliseconds extra_wait) {
  ++stats_.requests;
  // One id for every attempt of this request: a late reply to an earlier attempt
  // answers it just as well.
  request.request_id = next_request_id_++;
  Expected<Frames> frames = to_expected([&] { return encode_request(request); });
  if (!frames.ok()) return frames.status();

  auto backoff = options_.backoff_initial;
  int silent_attempts = 0;
  std::optional<Clock::time_point> busy_since;
  while (true) {
    if (!socket_) {
      if (Status opened = open(); !opened.ok()) return opened;
    }
    std::optional<Expected<ProducerReply>> reply =
        exchange(*frames, request.request_id, options_.timeout + extra_wait);
    if (!reply) {
      ++stats_.timeouts;
      socket_.close();  // Lazy Pirate: a socket with a lost exchange is not reused
      if (++silent_attempts >= options_.attempts) {
        return Status(ErrorCode::kUnavailable,
                      "no reply from the coordinator at " + options_.endpoint + " to " +
                          verb_name(request.verb) + " after " + std::to_string(silent_attempts) +
                          " attempts of " +
                          std::to_string((options_.timeout + extra_wait).count()) +
                          " ms (the request was " + std::to_string(frames_size(*frames)) +
                          " bytes; a coordinator drops the connection of a peer whose message "
                          "is larger than its limit)");
      }
      sleep_backoff(backoff, std::chrono::milliseconds(0));
      continue;
    }
    if (!reply->ok()) return *reply;
    ProducerReply& r = reply->value();
    if (r.kind != ReplyKind::kBusy) return std::move(r);

    ++stats_.busy;
    const auto now = Clock::now();
    if (!busy_since) busy_since = now;
    if (now - *busy_since >= options_.busy_limit) {
      return Status(ErrorCode::kResourceExhausted,
                    "the coordinator at " + options_.endpoint + " stayed busy for " +
                        std::to_string(options_.busy_limit.count()) + " ms: " + r.message);
    }
    sleep_backoff(backoff, std::chrono::milliseconds(r.retry_after_ms));
  }
}

Status ProducerClient::unexpected(const ProducerReply& reply, const char* verb) const {
  if (reply.kind == ReplyKind::kError) return reply_error(reply);
  return Status(ErrorCode::kMalformed, std::string("coordinator answered ") + verb + " with " +
                                           reply_kind_name(reply.kind));
}

Expected<SubmitResult> ProducerClient::submit_chunk(const std::string& job_id, std::uint32_t chunk,
                                                    bool final,
                                                    const std::vector<std::string>& lines) {
  ProducerRequest request;
  request.verb = ProducerVerb::kSubmit;
  request.job_id = job_id;
  request.chunk = chunk;
  request.final = final;
  request.lines = lines;
  Expected<ProducerReply> reply = call(std::move(request), std::chrono::milliseconds(0));
  if (!reply.ok()) return reply.status();
  if (reply->kind != ReplyKind::kAck && reply->kind != ReplyKind::kDuplicate) {
    return unexpected(*reply, "SUBMIT");
  }
  if (reply->job_id != job_id || reply->chunk != chunk) {
    return Status(ErrorCode::kMalformed, "coordinator acknowledged another chunk (" +
                                             reply->job_id + " #" + std::to_string(reply->chunk) +
                                             ")");
  }
  return SubmitResult{reply->kind == ReplyKind::kDuplicate};
}

Expected<JobStatusReply> ProducerClient::status(const std::string& job_id) {
  ProducerRequest request;
  request.verb = ProducerVerb::kStatus;
  request.job_id = job_id;
  Expected<ProducerReply> reply = call(std::move(request), std::chrono::milliseconds(0));
  if (!reply.ok()) return reply.status();
  if (reply->kind == ReplyKind::kStatus) return reply->status;
  if (reply->kind == ReplyKind::kError && reply->error == ErrorCode::kNotFound) {
    return JobStatusReply{};
  }
  return unexpected(*reply, "STATUS");
}

Status ProducerClient::cancel(const std::string& job_id) {
  ProducerRequest request;
  request.verb = ProducerVerb::kCancel;
  request.job_id = job_id;
  Expected<ProducerReply> reply = call(std::move(request), std::chrono::milliseconds(0));
  if (!reply.ok()) return reply.status();
  return reply->kind == ReplyKind::kOk ? Status() : unexpected(*reply, "CANCEL");
}

Status ProducerClient::release(const std::string& job_id) {
  ProducerRequest request;
  request.verb = ProducerVerb::kRelease;
  request.job_id = job_id;
  Expected<ProducerReply> reply = call(std::move(request), std::chrono::milliseconds(0));
  if (!reply.ok()) return reply.status();
  return reply->kind == ReplyKind::kOk ? Status() : unexpected(*reply, "RELEASE");
}

Expected<FetchReply> ProducerClient::fetch(const std::string& job_id, std::uint64_t offset,
                                           std::uint32_t max_lines, std::uint32_t wait_ms) {
  ProducerRequest request;
  request.verb = ProducerVerb::kFetch;
  request.job_id = job_id;
  request.offset = offset;
  request.max_lines = max_lines;
  request.wait_ms = wait_ms;
  Expected<ProducerReply> reply = call(std::move(request), std::chrono::milliseconds(wait_ms));
  if (!reply.ok()) return reply.status();
  if (reply->kind == ReplyKind::kResults) return std::move(reply->results);
  if (reply->kind == ReplyKind::kError && reply->error == ErrorCode::kNotFound) {
    return FetchReply{};
  }
  return unexpected(*reply, "FETCH");
}

}  // namespace conveyor
