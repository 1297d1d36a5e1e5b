// What this build of Conveyor can use, and what the machine offers at run time:
// compiled-in backends and transports, their library versions, and GPU count.
#pragma once

#include <string>

namespace conveyor {

struct BuildInfo {
  std::string version;
  bool with_cuda = false;
  bool with_ucx = false;
  bool with_nccl = false;
  int cuda_devices = 0;      // 0 when built without CUDA or no device/driver is present
  std::string cuda_runtime;  // "13.0", empty without CUDA
  std::string ucx_version;   // empty without UCX
  std::string nccl_version;  // empty without NCCL
};

BuildInfo build_info();
std::string describe(const BuildInfo& info);

}  // namespace conveyor
