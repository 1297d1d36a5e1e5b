// The Backend ops with a default: what a backend that does not override them does.
#include <string>

#include "common/status.h"
#include "kernels/backend.h"

namespace conveyor {

void Backend::sample(float* /*logits*/, std::int64_t /*vocab*/, std::span<const SampleRow> /*rows*/,
                     std::int32_t* /*host_out*/) {
  fail(ErrorCode::kUnsupported, name() + " backend: sampling runs on the host");
}

namespace {

// What a synchronous backend's ops have done by the time they return.
class PassedFence final : public BackendFence {
 public:
  bool ready() override { return true; }
  void wait() override {}
};

}  // namespace

void Backend::use_lane(int lane) {
  if (lane != 0) {
    fail(ErrorCode::kInvalidArgument,
         name() + " backend: lane " + std::to_string(lane) + " of its one lane");
  }
}

std::unique_ptr<BackendFence> Backend::fence() {
  synchronize();
  return std::make_unique<PassedFence>();
}

void Backend::swiglu_ffn(const float* x, std::int64_t m, const BackendWeight& gate,
                         const BackendWeight& up, const BackendWeight& down, float* gate_work,
                         float* up_work, float* out) {
  gemm(x, m, gate, gate_work);
  gemm(x, m, up, up_work);
  swiglu(gate_work, up_work, m * gate.rows(), gate_work);
  gemm(gate_work, m, down, out, {nullptr, true});
}

}  // namespace conveyor
