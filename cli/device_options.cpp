#include "cli/device_options.h"

namespace conveyor::cli {

void DeviceOptions::add_to(CLI::App& cmd) {
  cmd.add_option("--backend", backend, "auto (cuda where a GPU answers), cpu, cuda or cuda:N")
      ->envname("CONVEYOR_BACKEND");
  cmd.add_option("--gpu-memory-fraction", gpu_memory_fraction,
                 "CUDA: share of GPU memory reserved at start")
      ->check(CLI::Range(0.01, 1.0));
  cmd.add_option("-t,--threads", threads, "CPU threads (default: all cores)")
      ->envname("CONVEYOR_THREADS");
}

BackendRequest DeviceOptions::request() const {
  BackendRequest request = parse_device(backend);
  request.threads = threads;
  request.gpu_memory_fraction = gpu_memory_fraction;
  return request;
}

}  // namespace conveyor::cli
