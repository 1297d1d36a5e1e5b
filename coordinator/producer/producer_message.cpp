#include "coordinator/producer/producer_message.h"

#include <array>
#include <cstring>

#include "common/wire/wire_buffer.h"
#include "coordinator/producer/job_id.h"

namespace conveyor {
namespace {

constexpr std::array<std::pair<ProducerVerb, std::string_view>, 5> kVerbs{{
    {ProducerVerb::kSubmit, "SUBMIT"},
    {ProducerVerb::kStatus, "STATUS"},
    {ProducerVerb::kCancel, "CANCEL"},
    {ProducerVerb::kFetch, "FETCH"},
    {ProducerVerb::kRelease, "RELEASE"},
}};
constexpr std::array<std::pair<ReplyKind, std::string_view>, 7> kReplyKinds{{
    {ReplyKind::kAck, "ACK"},
    {ReplyKind::kDuplicate, "DUPLICATE"},
    {ReplyKind::kBusy, "BUSY"},
    {ReplyKind::kError, "ERROR"},
    {ReplyKind::kStatus, "STATUS"},
    {ReplyKind::kResults, "RESULTS"},
    {ReplyKind::kOk, "OK"},
}};

constexpr std::size_t kMaxMessageText = 64 * 1024;  // ERROR and BUSY messages, state names
constexpr std::size_t kMaxStateBytes = 64;

std::string as_string(const std::vector<std::uint8_t>& bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

std::span<const std::uint8_t> as_bytes(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

std::string encode_u64(std::uint64_t value) {
  WireWriter w;
  w.put<std::uint64_t>(value);
  return as_string(w.bytes());
}

Frames header(std::string_view kind, std::uint64_t request_id) {
  return Frames{std::string(kProducerProtocolMagic), std::string(kind), encode_u64(request_id)};
}

void check_header(std::span<const std::string_view> frames, std::size_t min_frames) {
  if (frames.empty() || frames[0] != kProducerProtocolMagic) {
    fail(ErrorCode::kMalformed, "not a producer protocol message (frame 0 is not \"CVP1\")");
  }
  if (frames.size() < min_frames) {
    fail(ErrorCode::kMalformed, "message has " + std::to_string(frames.size()) +
                                    " frames; at least " + std::to_string(min_frames) +
                                    " expected");
  }
  if (frames[2].size() != sizeof(std::uint64_t)) {
    fail(ErrorCode::kMalformed,
         "request id frame is " + std::to_string(frames[2].size()) + " bytes, not 8");
  }
}

std::uint64_t read_request_id(std::string_view frame) {
  WireReader r(as_bytes(frame));
  return r.get<std::uint64_t>("request id");
}

void expect_frames(std::span<const std::string_view> frames, std::size_t count,
                   std::string_view what) {
  if (frames.size() != count) {
    fail(ErrorCode::kMalformed, std::string(what) + " has " + std::to_string(frames.size()) +
                                    " frames, not " + std::to_string(count));
  }
}

std::string read_job_id(WireReader& r) {
  std::string job_id = r.get_string("job id", kMaxJobIdBytes);
  const Status valid = validate_job_id(job_id);
  if (!valid.ok()) fail(ErrorCode::kInvalidArgument, valid.message());
  return job_id;
}

ProducerRequest decode_request_or_throw(std::span<const std::string_view> frames) {
  check_header(frames, 4);
  ProducerRequest request;
  request.request_id = read_request_id(frames[2]);
  bool known = false;
  for (const auto& [verb, name] : kVerbs) {
    if (frames[1] == name) {
      request.verb = verb;
      known = true;
    }
  }
  if (!known) fail(ErrorCode::kUnsupported, "unknown verb (frame 1)");

  WireReader r(as_bytes(frames[3]));
  request.job_id = read_job_id(r);
  switch (request.verb) {
    case ProducerVerb::kSubmit: {
      expect_frames(frames, 5, "SUBMIT");
      request.chunk = r.get<std::uint32_t>("chunk");
      request.final = r.get_bool("final");
      r.expect_end("SUBMIT body");
      Expected<std::vector<std::string>> lines = split_chunk_lines(frames[4]);
      if (!lines.ok()) throw Error(lines.status().code(), lines.status().message());
      request.lines = std::move(lines).value();
      break;
    }
    case ProducerVerb::kFetch:
      expect_frames(frames, 4, "FETCH");
      request.offset = r.get<std::uint64_t>("offset");
      request.max_lines = r.get<std::uint32_t>("max lines");
      request.wait_ms = r.get<std::uint32_t>("wait ms");
      r.expect_end("FETCH body");
      break;
    case ProducerVerb::kStatus:
    case ProducerVerb::kCancel:
    case ProducerVerb::kRelease:
      expect_frames(frames, 4, verb_name(request.verb));
      r.expect_end("body");
      break;
  }
  return request;
}

ProducerReply decode_reply_or_throw(std::span<const std::string_view> frames) {
  check_header(frames, 4);
  ProducerReply reply;
  reply.request_id = read_request_id(frames[2]);
  bool known = false;
  for (const auto& [kind, name] : kReplyKinds) {
    if (frames[1] == name) {
      reply.kind = kind;
      known = true;
    }
  }
  if (!known) fail(ErrorCode::kUnsupported, "unknown reply kind (frame 1)");

  WireReader r(as_bytes(frames[3]));
  switch (reply.kind) {
    case ReplyKind::kAck:
    case ReplyKind::kDuplicate:
      expect_frames(frames, 4, reply_kind_name(reply.kind));
      reply.job_id = read_job_id(r);
      reply.chunk = r.get<std::uint32_t>("chunk");
      break;
    case ReplyKind::kBusy:
      expect_frames(frames, 4, "BUSY");
      reply.retry_after_ms = r.get<std::uint32_t>("retry after");
      reply.message = r.get_string("message", kMaxMessageText);
      break;
    case ReplyKind::kError: {
      expect_frames(frames, 4, "ERROR");
      reply.error = error_code_from_name(r.get_string("error code", kMaxMessageText));
      if (reply.error == ErrorCode::kOk) reply.error = ErrorCode::kInternal;
      reply.message = r.get_string("message", kMaxMessageText);
      break;
    }
    case ReplyKind::kStatus: {
      expect_frames(frames, 4, "STATUS");
      JobStatusReply& s = reply.status;
      s.found = true;
      s.state = r.get_string("state", kMaxStateBytes);
      s.total = r.get<std::int64_t>("total");
      s.completed = r.get<std::int64_t>("completed");
      s.failed = r.get<std::int64_t>("failed");
      s.chunks = r.get<std::uint32_t>("chunks");
      s.final_received = r.get_bool("final received");
      break;
    }
    case ReplyKind::kResults: {
      FetchReply& f = reply.results;
      f.found = true;
      f.next_offset = r.get<std::uint64_t>("next offset");
      f.job_done = r.get_bool("job done");
      f.total = r.get<std::int64_t>("total");
      f.completed = r.get<std::int64_t>("completed");
      f.failed = r.get<std::int64_t>("failed");
      const std::size_t count = r.get<std::uint32_t>("record count");
      if (count > kMaxFetchRecords || count != frames.size() - 4) {
        fail(ErrorCode::kMalformed, "RESULTS declares " + std::to_string(count) +
                                        " records and carries " +
                                        std::to_string(frames.size() - 4));
      }
      f.records.reserve(count);
      for (std::size_t i = 0; i < count; ++i) {
        const std::string_view frame = frames[4 + i];
        if (frame.empty() || (frame[0] != 'R' && frame[0] != 'E')) {
          fail(ErrorCode::kMalformed,
               "RESULTS record " + std::to_string(i) + " does not start with 'R' or 'E'");
        }
        f.records.push_back({frame[0] == 'E', std::string(frame.substr(1))});
      }
      break;
    }
    case ReplyKind::kOk:
      expect_frames(frames, 4, "OK");
      break;
  }
  r.expect_end("reply body");
  return reply;
}

}  // namespace

const char* verb_name(ProducerVerb verb) {
  for (const auto& [v, name] : kVerbs) {
    if (v == verb) return name.data();
  }
  return "?";
}

const char* reply_kind_name(ReplyKind kind) {
  for (const auto& [k, name] : kReplyKinds) {
    if (k == kind) return name.data();
  }
  return "?";
}

ErrorCode error_code_from_name(std::string_view name) {
  for (int c = 0; c <= static_cast<int>(ErrorCode::kCancelled); ++c) {
    const auto code = static_cast<ErrorCode>(c);
    if (name == error_code_name(code)) return code;
  }
  return ErrorCode::kInternal;
}

Expected<std::vector<std::string>> split_chunk_lines(std::string_view bytes) {
  std::vector<std::string> lines;
  std::size_t begin = 0;
  while (begin < bytes.size()) {
    if (lines.size() == kMaxChunkLines) {
      return Status(ErrorCode::kMalformed,
                    "chunk has more than " + std::to_string(kMaxChunkLines) + " lines");
    }
    std::size_t end = bytes.find('\n', begin);
    if (end == std::string_view::npos) end = bytes.size();
    lines.emplace_back(bytes.substr(begin, end - begin));
    begin = end + 1;
  }
  return lines;
}

std::string join_chunk_lines(const std::vector<std::string>& lines) {
  std::size_t size = 0;
  for (const std::string& line : lines)
    size += line.size() + 1;
  std::string joined;
  joined.reserve(size);
  for (const std::string& line : lines) {
    if (line.find('\n') != std::string::npos) {
      fail(ErrorCode::kInvalidArgument, "a JSONL line cannot contain '\\n'");
    }
    joined += line;
    joined += '\n';
  }
  return joined;
}

Frames encode_request(const ProducerRequest& request) {
  Frames frames = header(verb_name(request.verb), request.request_id);
  WireWriter w;
  w.put_string(request.job_id);
  switch (request.verb) {
    case ProducerVerb::kSubmit:
      if (request.lines.size() > kMaxChunkLines) {
        fail(ErrorCode::kInvalidArgument,
             "a chunk holds at most " + std::to_string(kMaxChunkLines) + " lines");
      }
      w.put<std::uint32_t>(request.chunk);
      w.put_bool(request.final);
      frames.push_back(as_string(w.bytes()));
      frames.push_back(join_chunk_lines(request.lines));
      return frames;
    case ProducerVerb::kFetch:
      w.put<std::uint64_t>(request.offset);
      w.put<std::uint32_t>(request.max_lines);
      w.put<std::uint32_t>(request.wait_ms);
      break;
    case ProducerVerb::kStatus:
    case ProducerVerb::kCancel:
    case ProducerVerb::kRelease:
      break;
  }
  frames.push_back(as_string(w.bytes()));
  return frames;
}

Frames encode_reply(const ProducerReply& reply) {
  Frames frames = header(reply_kind_name(reply.kind), reply.request_id);
  WireWriter w;
  switch (reply.kind) {
    case ReplyKind::kAck:
    case ReplyKind::kDuplicate:
      w.put_string(reply.job_id);
      w.put<std::uint32_t>(reply.chunk);
      break;
    case ReplyKind::kBusy:
      w.put<std::uint32_t>(reply.retry_after_ms);
      w.put_string(reply.message.substr(0, kMaxMessageText));
      break;
    case ReplyKind::kError:
      w.put_string(error_code_name(reply.error));
      w.put_string(reply.message.substr(0, kMaxMessageText));
      break;
    case ReplyKind::kStatus:
      w.put_string(reply.status.state.substr(0, kMaxStateBytes));
      w.put<std::int64_t>(reply.status.total);
      w.put<std::int64_t>(reply.status.completed);
      w.put<std::int64_t>(reply.status.failed);
      w.put<std::uint32_t>(reply.status.chunks);
      w.put_bool(reply.status.final_received);
      break;
    case ReplyKind::kResults: {
      const FetchReply& f = reply.results;
      if (f.records.size() > kMaxFetchRecords) {
        fail(ErrorCode::kInvalidArgument,
             "RESULTS holds at most " + std::to_string(kMaxFetchRecords) + " records");
      }
      w.put<std::uint64_t>(f.next_offset);
      w.put_bool(f.job_done);
      w.put<std::int64_t>(f.total);
      w.put<std::int64_t>(f.completed);
      w.put<std::int64_t>(f.failed);
      w.put<std::uint32_t>(static_cast<std::uint32_t>(f.records.size()));
      frames.push_back(as_string(w.bytes()));
      for (const ResultRecord& record : f.records) {
        std::string frame;
        frame.reserve(record.line.size() + 1);
        frame += record.error ? 'E' : 'R';
        frame += record.line;
        frames.push_back(std::move(frame));
      }
      return frames;
    }
    case ReplyKind::kOk:
      break;
  }
  frames.push_back(as_string(w.bytes()));
  return frames;
}

Expected<ProducerRequest> decode_request(std::span<const std::string_view> frames) {
  return to_expected([&] { return decode_request_or_throw(frames); });
}

Expected<ProducerReply> decode_reply(std::span<const std::string_view> frames) {
  return to_expected([&] { return decode_reply_or_throw(frames); });
}

std::uint64_t peek_request_id(std::span<const std::string_view> frames) {
  if (frames.size() < 3 || frames[2].size() != sizeof(std::uint64_t)) return 0;
  return read_request_id(frames[2]);
}

}  // namespace conveyor
