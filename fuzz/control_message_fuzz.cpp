// Fuzz target for the control message decoder (worker/node/control_codec.h): the
// messages between the coordinator and its workers, read from any peer that reaches
// the worker ROUTER.
// Sources it needs:
//   fuzz/control_message_fuzz.cpp
//   worker/node/control_codec.cpp
//   worker/step_codec.cpp
//   worker/sampling/sampling_params.cpp
//   common/wire/wire_buffer.cpp
//   common/status.cpp
// Beyond "no crash": a refusal is kMalformed or kUnsupported, and whatever decodes
// encodes back to exactly the input (the format has one encoding per message, so a
// field read differently than written shows up as a difference). The step plan or
// step output a Step/StepResult message carries is decoded too, as a worker and the
// coordinator do next, and must round-trip the same way when it decodes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <variant>
#include <vector>

#include "worker/node/control_codec.h"
#include "worker/step_codec.h"

namespace {

template <typename T>
void check_inner(std::span<const std::uint8_t> payload,
                 conveyor::Expected<T> (*decode)(std::span<const std::uint8_t>),
                 std::vector<std::uint8_t> (*encode)(const T&)) {
  const conveyor::Expected<T> decoded = decode(payload);
  if (!decoded.ok()) return;
  const std::vector<std::uint8_t> encoded = encode(*decoded);
  const conveyor::Expected<T> again = decode(encoded);
  if (!again.ok()) std::abort();                // the encoder wrote what its own decoder refuses
  if (encode(*again) != encoded) std::abort();  // a field read differently than written
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  const conveyor::Expected<conveyor::ControlMessage> message = conveyor::decode_control(bytes);
  if (!message.ok()) {
    const conveyor::ErrorCode code = message.status().code();
    if (code != conveyor::ErrorCode::kMalformed && code != conveyor::ErrorCode::kUnsupported) {
      std::abort();
    }
    return 0;
  }
  const std::vector<std::uint8_t> encoded = conveyor::encode_control(*message);
  if (!std::equal(encoded.begin(), encoded.end(), bytes.begin(), bytes.end())) std::abort();
  if (const auto* step = std::get_if<conveyor::StepMessage>(&*message)) {
    check_inner(step->plan, conveyor::decode_step_plan, conveyor::encode_step_plan);
  } else if (const auto* result = std::get_if<conveyor::StepResultMessage>(&*message)) {
    check_inner(result->output, conveyor::decode_step_output, conveyor::encode_step_output);
  }
  return 0;
}
