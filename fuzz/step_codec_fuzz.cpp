// Fuzz target for the step message decoders (worker/step_codec.h): StepPlan and
// StepOutput, the binary messages between coordinator and workers.
// Sources it needs:
//   fuzz/step_codec_fuzz.cpp
//   worker/step_codec.cpp
//   worker/sampling/sampling_params.cpp
//   common/wire/wire_buffer.cpp
//   common/status.cpp
// The input is decoded as a plan and as an output (the header's type byte picks which
// one can succeed). Whatever decodes must re-encode to bytes that decode again and
// re-encode to the very same bytes: a worker and the coordinator read every field the
// same way, whichever side wrote it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "worker/step_codec.h"

namespace {

template <typename T>
void check_round_trip(const conveyor::Expected<T>& decoded,
                      std::vector<std::uint8_t> (*encode)(const T&),
                      conveyor::Expected<T> (*decode)(std::span<const std::uint8_t>)) {
  if (!decoded.ok()) return;
  const std::vector<std::uint8_t> encoded = encode(*decoded);
  const conveyor::Expected<T> again = decode(encoded);
  if (!again.ok()) std::abort();                // the encoder wrote what its own decoder refuses
  if (encode(*again) != encoded) std::abort();  // a field read differently than written
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  check_round_trip(conveyor::decode_step_plan(bytes), conveyor::encode_step_plan,
                   conveyor::decode_step_plan);
  check_round_trip(conveyor::decode_step_output(bytes), conveyor::encode_step_output,
                   conveyor::decode_step_output);
  return 0;
}
