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

std::string sparse24_fallback_note() {
  return cusparselt_available()
             ? "2:4 sparse weights: cuSPARSELt found but not used yet, running them dense"
             : "2:4 sparse weights: cuSPARSELt not found, running them dense";
}

void report_sparse24_fallback() {
  static std::once_flag once;
  std::call_once(once, [] {
    spdlog::logger& out = logger("cuda");
    if (cusparselt_available()) {
      log::info(out, sparse24_fallback_note());
    } else {
      log::warn(out, sparse24_fallback_note());
    }
  });
}

}  // namespace conveyor::cuda
