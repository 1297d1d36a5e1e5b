#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "coordinator/producer/job_id.h"
#include "coordinator/producer/producer_message.h"

namespace conveyor {
namespace {

std::vector<std::string_view> views(const Frames& frames) {
  return {frames.begin(), frames.end()};
}

ProducerRequest round_trip(const ProducerRequest& request) {
  const Frames frames = encode_request(request);
  Expected<ProducerRequest> decoded = decode_request(views(frames));
  REQUIRE(decoded.ok());
  return std::move(decoded).value();
}

ProducerReply round_trip(const ProducerReply& reply) {
  const Frames frames = encode_reply(reply);
  Expected<ProducerReply> decoded = decode_reply(views(frames));
  REQUIRE(decoded.ok());
  return std::move(decoded).value();
}

}  // namespace

TEST_CASE("job ids: 1-128 characters of [A-Za-z0-9._:-]") {
  CHECK(validate_job_id("job-1").ok());
  CHECK(validate_job_id("A.b_c:d-9").ok());
  CHECK(validate_job_id(std::string(128, 'x')).ok());
  CHECK(validate_job_id("").code() == ErrorCode::kInvalidArgument);
  CHECK(validate_job_id(std::string(129, 'x')).code() == ErrorCode::kInvalidArgument);
  CHECK(validate_job_id("a b").code() == ErrorCode::kInvalidArgument);
  CHECK(validate_job_id("a/b").code() == ErrorCode::kInvalidArgument);
  CHECK(validate_job_id(std::string("a\0b", 3)).code() == ErrorCode::kInvalidArgument);
}

TEST_CASE("requests round-trip through their frames") {
  ProducerRequest submit;
  submit.verb = ProducerVerb::kSubmit;
  submit.request_id = 0x0123456789abcdefULL;
  submit.job_id = "job.7";
  submit.chunk = 3;
  submit.final = true;
  submit.lines = {R"({"custom_id":"a"})", "", R"({"custom_id":"b"})"};
  const Frames frames = encode_request(submit);
  REQUIRE(frames.size() == 5);
  CHECK(frames[0] == "CVP1");
  CHECK(frames[1] == "SUBMIT");
  CHECK(frames[4] == "{\"custom_id\":\"a\"}\n\n{\"custom_id\":\"b\"}\n");
  const ProducerRequest s = round_trip(submit);
  CHECK(s.verb == ProducerVerb::kSubmit);
  CHECK(s.request_id == submit.request_id);
  CHECK(s.job_id == "job.7");
  CHECK(s.chunk == 3);
  CHECK(s.final);
  CHECK(s.lines == submit.lines);

  ProducerRequest fetch;
  fetch.verb = ProducerVerb::kFetch;
  fetch.request_id = 9;
  fetch.job_id = "j";
  fetch.offset = 1ULL << 40;
  fetch.max_lines = 500;
  fetch.wait_ms = 2500;
  const ProducerRequest f = round_trip(fetch);
  CHECK(f.verb == ProducerVerb::kFetch);
  CHECK(f.offset == fetch.offset);
  CHECK(f.max_lines == 500);
  CHECK(f.wait_ms == 2500);

  for (const ProducerVerb verb :
       {ProducerVerb::kStatus, ProducerVerb::kCancel, ProducerVerb::kRelease}) {
    ProducerRequest r;
    r.verb = verb;
    r.request_id = 5;
    r.job_id = "x";
    const ProducerRequest d = round_trip(r);
    CHECK(d.verb == verb);
    CHECK(d.job_id == "x");
  }
}

TEST_CASE("an empty SUBMIT lines frame is no lines; a last line without newline is a line") {
  CHECK(split_chunk_lines("")->empty());
  CHECK(split_chunk_lines("a\nb").value() == std::vector<std::string>{"a", "b"});
  CHECK(split_chunk_lines("a\n\n").value() == std::vector<std::string>{"a", ""});
  CHECK(split_chunk_lines(std::string(kMaxChunkLines + 1, '\n')).status().code() ==
        ErrorCode::kMalformed);
  CHECK_THROWS_AS(join_chunk_lines({"a\nb"}), Error);
}

TEST_CASE("replies round-trip through their frames") {
  ProducerReply ack;
  ack.kind = ReplyKind::kDuplicate;
  ack.request_id = 77;
  ack.job_id = "job";
  ack.chunk = 12;
  const ProducerReply a = round_trip(ack);
  CHECK(a.kind == ReplyKind::kDuplicate);
  CHECK(a.request_id == 77);
  CHECK(a.job_id == "job");
  CHECK(a.chunk == 12);

  ProducerReply busy;
  busy.kind = ReplyKind::kBusy;
  busy.retry_after_ms = 250;
  busy.message = "queue full";
  const ProducerReply b = round_trip(busy);
  CHECK(b.retry_after_ms == 250);
  CHECK(b.message == "queue full");

  ProducerReply error;
  error.kind = ReplyKind::kError;
  error.error = ErrorCode::kNotFound;
  error.message = "no job x";
  const ProducerReply e = round_trip(error);
  CHECK(e.error == ErrorCode::kNotFound);
  CHECK(e.message == "no job x");

  ProducerReply status;
  status.kind = ReplyKind::kStatus;
  status.status = {true, "running", 10, 4, 1, 2, true};
  const ProducerReply s = round_trip(status);
  CHECK(s.status.found);
  CHECK(s.status.state == "running");
  CHECK(s.status.total == 10);
  CHECK(s.status.completed == 4);
  CHECK(s.status.failed == 1);
  CHECK(s.status.chunks == 2);
  CHECK(s.status.final_received);

  ProducerReply results;
  results.kind = ReplyKind::kResults;
  results.results.records = {{false, R"({"custom_id":"a"})"}, {true, R"({"custom_id":"b"})"}};
  results.results.next_offset = 42;
  results.results.job_done = true;
  results.results.total = 3;
  const ProducerReply r = round_trip(results);
  REQUIRE(r.results.records.size() == 2);
  CHECK_FALSE(r.results.records[0].error);
  CHECK(r.results.records[1].error);
  CHECK(r.results.records[1].line == R"({"custom_id":"b"})");
  CHECK(r.results.next_offset == 42);
  CHECK(r.results.job_done);
  CHECK(r.results.total == 3);

  ProducerReply ok;
  ok.kind = ReplyKind::kOk;
  CHECK(round_trip(ok).kind == ReplyKind::kOk);
}

TEST_CASE("garbage is refused with a reason, never trusted") {
  ProducerRequest submit;
  submit.verb = ProducerVerb::kSubmit;
  submit.job_id = "job";
  submit.lines = {"x"};
  const Frames good = encode_request(submit);

  auto decode = [](Frames frames) { return decode_request(views(frames)).status().code(); };
  CHECK(decode({}) == ErrorCode::kMalformed);
  CHECK(decode({"CVP2", "SUBMIT", good[2], good[3], good[4]}) == ErrorCode::kMalformed);
  CHECK(decode({"CVP1", "SUBMIT", good[2]}) == ErrorCode::kMalformed);
  CHECK(decode({"CVP1", "SUBMIT", "1234567", good[3], good[4]}) == ErrorCode::kMalformed);
  CHECK(decode({"CVP1", "EXPLODE", good[2], good[3], good[4]}) == ErrorCode::kUnsupported);
  CHECK(decode({"CVP1", "SUBMIT", good[2], good[3]}) == ErrorCode::kMalformed);  // no lines
  CHECK(decode({"CVP1", "SUBMIT", good[2], good[3], good[4], "extra"}) == ErrorCode::kMalformed);
  Frames truncated = good;
  truncated[3].pop_back();
  CHECK(decode(truncated) == ErrorCode::kMalformed);
  Frames trailing = good;
  trailing[3] += 'x';
  CHECK(decode(trailing) == ErrorCode::kMalformed);
  Frames huge_length = good;
  huge_length[3][0] = '\xff';  // the job id's length claims far more than the frame holds
  huge_length[3][1] = '\xff';
  CHECK(decode(huge_length) == ErrorCode::kMalformed);
  Frames bad_bool = good;
  bad_bool[3].back() = '\x02';
  CHECK(decode(bad_bool) == ErrorCode::kMalformed);
  ProducerRequest bad_id = submit;
  bad_id.job_id = "no spaces";
  CHECK(decode(encode_request(bad_id)) == ErrorCode::kInvalidArgument);

  // The request id of a broken message is still found for its ERROR reply.
  CHECK(peek_request_id(views({"CVP1", "SUBMIT", good[2]})) == 0);
  ProducerRequest with_id = submit;
  with_id.request_id = 99;
  Frames broken = encode_request(with_id);
  broken.pop_back();
  CHECK(peek_request_id(views(broken)) == 99);

  ProducerReply results;
  results.kind = ReplyKind::kResults;
  results.results.records = {{false, "a"}};
  Frames reply = encode_reply(results);
  reply.pop_back();  // declares one record, carries none
  CHECK(decode_reply(views(reply)).status().code() == ErrorCode::kMalformed);
  reply.push_back("Xline");  // neither 'R' nor 'E'
  CHECK(decode_reply(views(reply)).status().code() == ErrorCode::kMalformed);
  reply.back() = "";
  CHECK(decode_reply(views(reply)).status().code() == ErrorCode::kMalformed);
}

TEST_CASE("an unknown error code name reads as internal, never as ok") {
  CHECK(error_code_from_name("not_found") == ErrorCode::kNotFound);
  CHECK(error_code_from_name("from_the_future") == ErrorCode::kInternal);
  ProducerReply error;
  error.kind = ReplyKind::kError;
  error.error = ErrorCode::kOk;
  CHECK(round_trip(error).error == ErrorCode::kInternal);
}

}  // namespace conveyor
