#include "kernels/cuda/cusparselt_probe.h"

#include <dlfcn.h>

#include <mutex>

#include "common/log/log.h"

namespace conveyor::cuda {
namespace {

bool probe() noexcept {
  void* library = ::dlopen("libcusparseLt.so.0", RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) return false;
  const bool usable = ::dlsym(library, "cusparseLtInit") != nullptr;
  ::dlclose(library);
  return usable;
}

}  // namespace

bool cusparselt_available() noexcept {
  static const bool available = probe();
  return available;
}

void report_sparse24_fallback() {
  static std::once_flag once;
  std::call_once(once, [] {
    spdlog::logger& out = logger("cuda");
    if (cusparselt_available()) {
      log::info(out, "2:4 sparse weights: cuSPARSELt found but not used yet, running them dense");
    } else {
      log::warn(out, "2:4 sparse weights: cuSPARSELt not found, running them dense");
    }
  });
}

}  // namespace conveyor::cuda
