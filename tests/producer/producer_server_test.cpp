#include <doctest/doctest.h>

#include <future>
#include <string>
#include <vector>

#include <zmq_addon.hpp>

#include "tests/producer/producer_harness.h"

namespace conveyor {
namespace {

using testing::eventually;
using testing::ProducerHarness;

const std::vector<std::string> kLines = {R"({"custom_id":"a","body":{}})",
                                         R"({"custom_id":"b","body":{}})"};

std::string u64_frame(std::uint64_t value) {
  return std::string(reinterpret_cast<const char*>(&value), sizeof(value));
}

// A bare DEALER, for sending what ProducerClient never would.
struct RawProducer {
  RawProducer(zmq::context_t& context, const std::string& endpoint)
      : socket(context, zmq::socket_type::dealer) {
    socket.set(zmq::sockopt::linger, 0);
    socket.connect(endpoint);
  }
  void send(const std::vector<std::string>& frames) {
    for (std::size_t i = 0; i < frames.size(); ++i) {
      (void)socket.send(zmq::buffer(frames[i]),
                        i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
  ProducerReply receive() {
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    REQUIRE(zmq::poll(&item, 1, std::chrono::seconds(10)) == 1);
    std::vector<zmq::message_t> parts;
    REQUIRE(zmq::recv_multipart(socket, std::back_inserter(parts)));
    std::vector<std::string_view> views;
    for (const auto& p : parts)
      views.push_back(p.to_string_view());
    Expected<ProducerReply> reply = decode_reply(views);
    REQUIRE(reply.ok());
    return std::move(reply).value();
  }
  zmq::socket_t socket;
};

}  // namespace

TEST_CASE("submit: ACK once durable, the lines reach the service, status reflects them") {
  ProducerHarness h;
  ProducerClient client(h.context, h.client_options());
  Expected<SubmitResult> r = client.submit_chunk("job-1", 0, false, kLines);
  REQUIRE(r.ok());
  CHECK_FALSE(r->duplicate);
  CHECK(h.service.lines("job-1", 0) == kLines);
  REQUIRE(client.submit_chunk("job-1", 1, true, {R"({"custom_id":"c"})"}).ok());

  Expected<JobStatusReply> s = client.status("job-1");
  REQUIRE(s.ok());
  CHECK(s->found);
  CHECK(s->state == "running");
  CHECK(s->total == 3);
  CHECK(s->chunks == 2);
  CHECK(s->final_received);
  CHECK(h.server.counters().acks == 2);
}

TEST_CASE("a duplicate chunk is answered DUPLICATE and accepted once") {
  ProducerHarness h;
  ProducerClient client(h.context, h.client_options());
  REQUIRE(client.submit_chunk("job", 0, true, kLines).ok());
  Expected<SubmitResult> again = client.submit_chunk("job", 0, true, kLines);
  REQUIRE(again.ok());
  CHECK(again->duplicate);
  CHECK(h.service.accepted_total() == 1);
  CHECK(h.service.answers("job", 0) == 2);
  CHECK(h.server.counters().duplicates == 1);
}

TEST_CASE("lost ACKs: the client retries and the chunk is accepted exactly once") {
  auto options = testing::local_server_options();
  options.drop_acks = 2;
  ProducerHarness h(options);
  auto client_options = h.client_options();
  client_options.timeout = std::chrono::milliseconds(100);
  ProducerClient client(h.context, client_options);
  Expected<SubmitResult> r = client.submit_chunk("job", 0, true, kLines);
  REQUIRE(r.ok());
  CHECK(r->duplicate);  // the first attempt's ACK was the one lost
  CHECK(client.stats().timeouts == 2);
  CHECK(h.service.accepted_total() == 1);
  CHECK(h.service.answers("job", 0) == 3);
  CHECK(h.server.counters().dropped_acks == 2);
  // Later chunks are acknowledged normally.
  REQUIRE(client.submit_chunk("job", 1, true, kLines).ok());
  CHECK(client.stats().timeouts == 2);
}

TEST_CASE("BUSY: the client backs off and retries until the service has room") {
  ProducerHarness h;
  h.service.set_busy(true);
  std::thread freer([&] {
    (void)eventually([&] { return h.server.counters().busy >= 3; });
    h.service.set_busy(false);
  });
  ProducerClient client(h.context, h.client_options());
  Expected<SubmitResult> r = client.submit_chunk("job", 0, true, kLines);
  freer.join();
  REQUIRE(r.ok());
  CHECK(client.stats().busy >= 3);
  CHECK(h.service.accepted_total() == 1);
}

TEST_CASE("BUSY past busy_limit is reported, nothing stored") {
  ProducerHarness h;
  h.service.set_busy(true);
  auto options = h.client_options();
  options.busy_limit = std::chrono::milliseconds(30);
  ProducerClient client(h.context, options);
  Expected<SubmitResult> r = client.submit_chunk("job", 0, true, kLines);
  CHECK(r.status().code() == ErrorCode::kResourceExhausted);
  CHECK(h.service.stored_chunks() == 0);
}

TEST_CASE("FETCH long-polls: parked until notify() announces new results") {
  ProducerHarness h;
  ProducerClient client(h.context, h.client_options());
  REQUIRE(client.submit_chunk("job", 0, true, kLines).ok());

  auto pending = std::async(std::launch::async, [&] {
    ProducerClient poller(h.context, h.client_options());
    return poller.fetch("job", 0, 100, 10'000);
  });
  REQUIRE(eventually([&] { return h.server.counters().parked == 1; }));
  h.service.add_result("job", {false, R"({"custom_id":"a"})"});
  h.server.notify("other-job");  // not this one: stays parked
  h.server.notify("job");
  Expected<FetchReply> first = pending.get();
  REQUIRE(first.ok());
  CHECK(first->found);
  REQUIRE(first->records.size() == 1);
  CHECK(first->records[0].line == R"({"custom_id":"a"})");
  CHECK(first->next_offset == 1);
  CHECK_FALSE(first->job_done);
  CHECK(h.server.counters().parked == 0);

  h.service.add_result("job", {true, R"({"custom_id":"b"})"}, /*done=*/true);
  Expected<FetchReply> second = client.fetch("job", first->next_offset, 100, 10'000);
  REQUIRE(second.ok());
  REQUIRE(second->records.size() == 1);
  CHECK(second->records[0].error);
  CHECK(second->next_offset == 2);
  CHECK(second->job_done);
  CHECK(second->completed == 2);

  // Re-reading from an earlier offset (a reconnected producer) gives the same lines.
  Expected<FetchReply> again = client.fetch("job", 0, 100, 0);
  REQUIRE(again.ok());
  CHECK(again->records.size() == 2);
}

TEST_CASE("FETCH with nothing new answers empty when its wait runs out") {
  ProducerHarness h;
  ProducerClient client(h.context, h.client_options());
  REQUIRE(client.submit_chunk("job", 0, true, kLines).ok());
  Expected<FetchReply> r = client.fetch("job", 0, 10, 20);
  REQUIRE(r.ok());
  CHECK(r->found);
  CHECK(r->records.empty());
  CHECK(r->next_offset == 0);
  CHECK_FALSE(r->job_done);
}

TEST_CASE("unknown jobs, cancel and release") {
  ProducerHarness h;
  ProducerClient client(h.context, h.client_options());
  Expected<JobStatusReply> s = client.status("nope");
  REQUIRE(s.ok());
  CHECK_FALSE(s->found);
  Expected<FetchReply> f = client.fetch("nope", 0, 10, 0);
  REQUIRE(f.ok());
  CHECK_FALSE(f->found);
  CHECK(client.cancel("nope").code() == ErrorCode::kNotFound);
  CHECK(client.release("nope").code() == ErrorCode::kNotFound);

  REQUIRE(client.submit_chunk("job", 0, false, kLines).ok());
  CHECK(client.cancel("job").ok());
  CHECK(client.status("job")->state == "cancelled");
  Expected<SubmitResult> late = client.submit_chunk("job", 1, true, kLines);
  CHECK(late.status().code() == ErrorCode::kInvalidArgument);  // the service's kRejected
  CHECK(client.release("job").ok());
  CHECK_FALSE(client.status("job")->found);
}

TEST_CASE("an invalid job id is answered ERROR invalid_argument") {
  ProducerHarness h;
  ProducerClient client(h.context, h.client_options());
  CHECK(client.submit_chunk("bad id", 0, true, kLines).status().code() ==
        ErrorCode::kInvalidArgument);
  CHECK(h.server.counters().messages == 1);  // the server answered ERROR
}

TEST_CASE("malformed messages get ERROR and the server keeps working") {
  ProducerHarness h;
  RawProducer raw(h.context, h.server.endpoint());
  raw.send({"CVP1", "SUBMIT", u64_frame(5), "garbage"});
  ProducerReply r = raw.receive();
  CHECK(r.kind == ReplyKind::kError);
  CHECK(r.request_id == 5);
  CHECK(r.error == ErrorCode::kMalformed);

  raw.send({"hello"});
  r = raw.receive();
  CHECK(r.kind == ReplyKind::kError);
  CHECK(r.request_id == 0);

  raw.send({"CVP1", "LAUNCH", u64_frame(6), ""});
  r = raw.receive();
  CHECK(r.error == ErrorCode::kUnsupported);
  CHECK(h.server.counters().errors == 3);

  ProducerClient client(h.context, h.client_options());
  CHECK(client.submit_chunk("job", 0, true, kLines).ok());
}

TEST_CASE("a message above MAXMSGSIZE: libzmq drops the connection, the client reports it") {
  auto options = testing::local_server_options();
  options.max_message_bytes = 1024;
  ProducerHarness h(options);
  auto client_options = h.client_options();
  client_options.timeout = std::chrono::milliseconds(100);
  client_options.attempts = 2;
  ProducerClient client(h.context, client_options);
  Expected<SubmitResult> r = client.submit_chunk("job", 0, true, {std::string(4096, 'x')});
  CHECK(r.status().code() == ErrorCode::kUnavailable);
  CHECK(r.status().message().find("after 2 attempts") != std::string::npos);
  CHECK(r.status().message().find("larger than its limit") != std::string::npos);
  CHECK(h.service.stored_chunks() == 0);

  // The same client, with a chunk of a sane size, still gets through.
  CHECK(client.submit_chunk("job", 0, true, kLines).ok());
}

TEST_CASE("a reply to a producer that has gone is counted unroutable, never blocks") {
  ProducerHarness h;
  ProducerClient client(h.context, h.client_options());
  REQUIRE(client.submit_chunk("job", 0, true, kLines).ok());
  {
    RawProducer raw(h.context, h.server.endpoint());
    ProducerRequest fetch;
    fetch.verb = ProducerVerb::kFetch;
    fetch.job_id = "job";
    fetch.max_lines = 10;
    fetch.wait_ms = 500;
    raw.send(encode_request(fetch));
    REQUIRE(eventually([&] { return h.server.counters().parked == 1; }));
  }  // the producer disconnects while its FETCH is parked
  // The wait runs out long after the loopback disconnect is known: the empty RESULTS
  // is refused (EHOSTUNREACH), counted, and the server goes on.
  REQUIRE(eventually([&] { return h.server.counters().unroutable == 1; }));
  // The server counts the refused reply before it updates the parked count.
  CHECK(eventually([&] { return h.server.counters().parked == 0; }));
  CHECK(client.status("job").ok());
}

TEST_CASE("binding an address in use fails with kUnavailable") {
  ProducerHarness h;
  auto options = testing::local_server_options();
  options.endpoint = h.server.endpoint();
  testing::FakeJobService service;
  ProducerServer second(h.context, service, options);
  const Status started = second.start();
  CHECK(started.code() == ErrorCode::kUnavailable);
  CHECK(started.message().find(h.server.endpoint()) != std::string::npos);
}

}  // namespace conveyor
