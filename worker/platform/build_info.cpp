#include "worker/platform/build_info.h"

#include <sstream>

#ifdef CONVEYOR_WITH_CUDA
#include "kernels/cuda/device.h"
#endif
#ifdef CONVEYOR_WITH_UCX
#include <ucp/api/ucp.h>
#endif
#ifdef CONVEYOR_WITH_NCCL
#include <nccl.h>
#endif

namespace conveyor {

BuildInfo build_info() {
  BuildInfo info;
  info.version = "0.1.0";
#ifdef CONVEYOR_WITH_CUDA
  info.with_cuda = true;
  info.cuda_devices = cuda::device_count();
  info.cuda_runtime = cuda::runtime_version();
#endif
#ifdef CONVEYOR_WITH_UCX
  info.with_ucx = true;
  info.ucx_version = ucp_get_version_string();
#endif
#ifdef CONVEYOR_WITH_NCCL
  info.with_nccl = true;
  int v = 0;
  if (ncclGetVersion(&v) == ncclSuccess) {
    std::ostringstream s;
    // NCCL >= 2.9 encodes versions as major*10000 + minor*100 + patch.
    s << v / 10000 << "." << (v / 100) % 100 << "." << v % 100;
    info.nccl_version = s.str();
  }
#endif
  return info;
}

std::string describe(const BuildInfo& info) {
  std::ostringstream s;
  s << "conveyor " << info.version << "\n";
  s << "  cuda: "
    << (info.with_cuda ? "built (runtime " + info.cuda_runtime + ", " +
                             std::to_string(info.cuda_devices) + " device(s))"
                       : "not built")
    << "\n";
  s << "  ucx:  " << (info.with_ucx ? "built (" + info.ucx_version + ")" : "not built") << "\n";
  s << "  nccl: " << (info.with_nccl ? "built (" + info.nccl_version + ")" : "not built") << "\n";
  return s.str();
}

}  // namespace conveyor
