// Fuzz target for the producer protocol decoders (coordinator/producer/producer_message.h).
// Sources it needs:
//   fuzz/producer_message_fuzz.cpp
//   coordinator/producer/producer_message.cpp
//   coordinator/producer/job_id.cpp
//   common/wire/wire_buffer.cpp
//   common/status.cpp
// The input is cut into frames: each frame is a u16 little-endian length then that
// many bytes (a short last frame takes what is left). The frames are decoded as a
// request and as a reply; whatever decodes must encode and decode again to the same
// frames, since both sides of the protocol rely on that.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/producer/producer_message.h"

namespace {

std::vector<std::string_view> cut_frames(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string_view> frames;
  std::size_t at = 0;
  while (at + 2 <= size && frames.size() < 64) {
    const std::size_t length =
        static_cast<std::size_t>(data[at]) | (static_cast<std::size_t>(data[at + 1]) << 8);
    at += 2;
    const std::size_t take = length < size - at ? length : size - at;
    frames.emplace_back(reinterpret_cast<const char*>(data + at), take);
    at += take;
  }
  return frames;
}

std::vector<std::string_view> views(const conveyor::Frames& frames) {
  return {frames.begin(), frames.end()};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::string_view> frames = cut_frames(data, size);
  (void)conveyor::peek_request_id(frames);

  conveyor::Expected<conveyor::ProducerRequest> request = conveyor::decode_request(frames);
  if (request.ok()) {
    const conveyor::Frames encoded = conveyor::encode_request(*request);
    conveyor::Expected<conveyor::ProducerRequest> again = conveyor::decode_request(views(encoded));
    if (!again.ok() || conveyor::encode_request(*again) != encoded) std::abort();
  }

  conveyor::Expected<conveyor::ProducerReply> reply = conveyor::decode_reply(frames);
  if (reply.ok()) {
    const conveyor::Frames encoded = conveyor::encode_reply(*reply);
    conveyor::Expected<conveyor::ProducerReply> again = conveyor::decode_reply(views(encoded));
    if (!again.ok() || conveyor::encode_reply(*again) != encoded) std::abort();
  }
  return 0;
}
