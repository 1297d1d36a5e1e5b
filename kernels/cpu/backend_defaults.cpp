// The Backend ops that a backend may lack, with what they do then.
#include "common/status.h"
#include "kernels/backend.h"

namespace conveyor {

void Backend::sample(float* /*logits*/, std::int64_t /*vocab*/, std::span<const SampleRow> /*rows*/,
                     std::int32_t* /*host_out*/) {
  fail(ErrorCode::kUnsupported, name() + " backend: sampling runs on the host");
}

}  // namespace conveyor
