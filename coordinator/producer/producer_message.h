// The producer protocol's messages: what a producer's DEALER sends to the
// coordinator's ROUTER and what comes back. docs/protocol.md is the reference; in
// short, every message is a multipart ZeroMQ message
//
//   frame 0  "CVP1"                  protocol magic and version
//   frame 1  verb or reply kind      ASCII: SUBMIT STATUS CANCEL FETCH RELEASE /
//                                    ACK DUPLICATE BUSY ERROR STATUS RESULTS OK
//   frame 2  request id              u64 little-endian, chosen by the producer, echoed
//   frame 3  body                    little-endian fields (WireWriter layout)
//   frame 4  SUBMIT: the chunk's lines, each ending in '\n' (one frame, so that the
//            coordinator's ZMQ_MAXMSGSIZE bounds a whole chunk)
//   frames 4..: RESULTS: one frame per record: 'R' (result) or 'E' (error), the line
//
// (the ROUTER adds the producer's identity frame in front; these functions never see
// it). Decoders check every length and count and refuse anything else with
// kMalformed; they never trust a declared size.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "coordinator/producer/job_service.h"

namespace conveyor {

inline constexpr std::string_view kProducerProtocolMagic = "CVP1";
// At most this many lines in one SUBMIT chunk: a frame of '\n' bytes would otherwise
// cost an empty string per byte.
inline constexpr std::size_t kMaxChunkLines = 100'000;
// At most this many records in one RESULTS reply.
inline constexpr std::size_t kMaxFetchRecords = 100'000;

enum class ProducerVerb { kSubmit, kStatus, kCancel, kFetch, kRelease };
enum class ReplyKind { kAck, kDuplicate, kBusy, kError, kStatus, kResults, kOk };

const char* verb_name(ProducerVerb verb);
const char* reply_kind_name(ReplyKind kind);

// One request. Fields beyond verb, request_id and job_id belong to one verb each.
struct ProducerRequest {
  ProducerVerb verb = ProducerVerb::kStatus;
  std::uint64_t request_id = 0;
  std::string job_id;
  // SUBMIT
  std::uint32_t chunk = 0;
  bool final = false;
  std::vector<std::string> lines;
  // FETCH
  std::uint64_t offset = 0;
  std::uint32_t max_lines = 0;
  std::uint32_t wait_ms = 0;  // park the FETCH up to this long while there is nothing new
};

struct ProducerReply {
  ReplyKind kind = ReplyKind::kOk;
  std::uint64_t request_id = 0;
  // ACK, DUPLICATE: which chunk
  std::string job_id;
  std::uint32_t chunk = 0;
  // BUSY
  std::uint32_t retry_after_ms = 0;
  // ERROR (error, message); BUSY (message)
  ErrorCode error = ErrorCode::kOk;
  std::string message;
  // STATUS (found is always true on the wire: an unknown job is ERROR not_found)
  JobStatusReply status;
  // RESULTS
  FetchReply results;
};

// The frames of a message, as sent.
using Frames = std::vector<std::string>;

Frames encode_request(const ProducerRequest& request);
Frames encode_reply(const ProducerReply& reply);

// `frames` are views of the received frames (identity already removed).
Expected<ProducerRequest> decode_request(std::span<const std::string_view> frames);
Expected<ProducerReply> decode_reply(std::span<const std::string_view> frames);

// The request id of a message too broken to decode, for its ERROR reply; 0 when even
// that frame is unreadable.
std::uint64_t peek_request_id(std::span<const std::string_view> frames);

// The ErrorCode whose error_code_name() is `name`; kInternal for names this build
// does not know (a newer coordinator).
ErrorCode error_code_from_name(std::string_view name);

// Splits a SUBMIT lines frame: lines end in '\n'; a last line without one is a line.
// kMalformed past kMaxChunkLines.
Expected<std::vector<std::string>> split_chunk_lines(std::string_view bytes);
// The inverse: each line followed by '\n'.
std::string join_chunk_lines(const std::vector<std::string>& lines);

}  // namespace conveyor
