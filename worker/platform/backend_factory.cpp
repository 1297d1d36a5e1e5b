#include "worker/platform/backend_factory.h"

#include <charconv>

#include "common/status.h"
#include "kernels/cpu/cpu_backend.h"
#include "worker/platform/build_info.h"

#ifdef CONVEYOR_WITH_CUDA
#include "kernels/cuda/cublaslt_api.h"
#include "kernels/cuda/device.h"
#endif

namespace conveyor {

bool cuda_available() {
#ifdef CONVEYOR_WITH_CUDA
  // A device alone is not enough: the backend's GEMMs need cuBLASLt to load.
  return cuda::device_count() > 0 && cuda::cublaslt_available();
#else
  return false;
#endif
}

BackendKind resolve(BackendKind kind) {
  if (kind != BackendKind::kAuto) return kind;
  return cuda_available() ? BackendKind::kCuda : BackendKind::kCpu;
}

std::unique_ptr<Backend> make_backend(const BackendRequest& request) {
  if (resolve(request.kind) == BackendKind::kCpu) {
    CpuBackendOptions options;
    options.threads = request.threads;
    return make_cpu_backend(options);
  }
#ifdef CONVEYOR_WITH_CUDA
  CudaBackendOptions options;
  options.device = request.device;
  options.memory_fraction = request.gpu_memory_fraction;
  options.matrices = request.cuda_matrices;
  return make_cuda_backend(options);
#else
  fail(ErrorCode::kUnsupported,
       "the cuda backend is not in this build (configure with -DCONVEYOR_WITH_CUDA=ON)");
#endif
}

BackendRequest parse_device(const std::string& text) {
  BackendRequest request;
  if (text == "cpu") {
    request.kind = BackendKind::kCpu;
    return request;
  }
  if (text == "auto") return request;
  if (text == "cuda") {
    request.kind = BackendKind::kCuda;
    return request;
  }
  if (text.rfind("cuda:", 0) == 0) {
    const char* begin = text.data() + 5;
    const char* end = text.data() + text.size();
    int device = -1;
    const auto [ptr, error] = std::from_chars(begin, end, device);
    if (error == std::errc() && ptr == end && begin != end && device >= 0) {
      request.kind = BackendKind::kCuda;
      request.device = device;
      return request;
    }
  }
  fail(ErrorCode::kInvalidArgument, "device \"" + text + "\": expected cpu, auto, cuda or cuda:N");
}

}  // namespace conveyor
