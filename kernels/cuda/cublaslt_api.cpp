#include "kernels/cuda/cublaslt_api.h"

#include <dlfcn.h>

#include <string>

#include "common/status.h"

namespace conveyor::cuda {
namespace {

template <typename Fn>
void resolve(void* library, const char* symbol, Fn& out) {
  void* address = ::dlsym(library, symbol);
  if (address == nullptr) {
    fail(ErrorCode::kUnavailable, std::string("cublasLt: no symbol ") + symbol);
  }
  out = reinterpret_cast<Fn>(address);
}

CublasLtApi load() {
  // The major version the code was compiled against, then any.
  const std::string versioned = "libcublasLt.so." + std::to_string(CUBLAS_VER_MAJOR);
  void* library = ::dlopen(versioned.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) library = ::dlopen("libcublasLt.so", RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char* why = ::dlerror();
    fail(ErrorCode::kUnavailable,
         "cannot load " + versioned + ": " + (why != nullptr ? why : "not found"));
  }
  // Kept loaded for the life of the process: the backend may call it until exit.
  CublasLtApi api;
  resolve(library, "cublasLtCreate", api.create);
  resolve(library, "cublasLtDestroy", api.destroy);
  resolve(library, "cublasLtGetStatusName", api.status_name);
  resolve(library, "cublasLtGetStatusString", api.status_string);
  resolve(library, "cublasLtMatmul", api.matmul);
  resolve(library, "cublasLtMatmulAlgoGetHeuristic", api.algo_get_heuristic);
  resolve(library, "cublasLtMatmulDescCreate", api.matmul_desc_create);
  resolve(library, "cublasLtMatmulDescDestroy", api.matmul_desc_destroy);
  resolve(library, "cublasLtMatmulDescSetAttribute", api.matmul_desc_set_attribute);
  resolve(library, "cublasLtMatmulPreferenceCreate", api.preference_create);
  resolve(library, "cublasLtMatmulPreferenceDestroy", api.preference_destroy);
  resolve(library, "cublasLtMatmulPreferenceSetAttribute", api.preference_set_attribute);
  resolve(library, "cublasLtMatrixLayoutCreate", api.matrix_layout_create);
  resolve(library, "cublasLtMatrixLayoutDestroy", api.matrix_layout_destroy);
  return api;
}

}  // namespace

const CublasLtApi& cublaslt() {
  static const CublasLtApi api = load();  // a failed load throws again on the next call
  return api;
}

bool cublaslt_available() noexcept {
  try {
    cublaslt();
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace conveyor::cuda
