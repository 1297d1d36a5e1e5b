// The device flags of the commands that open one backend themselves (`generate`,
// `eval`): which backend, its memory share on a GPU, and its threads on the CPU.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "worker/platform/backend_factory.h"

namespace conveyor::cli {

struct DeviceOptions {
  std::string backend = "auto";
  double gpu_memory_fraction = 0.9;
  int threads = 0;

  // Declares --backend, --gpu-memory-fraction and -t/--threads on `cmd`.
  void add_to(CLI::App& cmd);
  // The backend these flags ask for.
  BackendRequest request() const;
};

}  // namespace conveyor::cli
