// The cuBLASLt entry points the backend uses, loaded with dlopen on first use instead
// of linked. libcublasLt keeps 94 KB of thread-local storage; linked, it is reserved
// in every thread of the process, and threads started with small stacks cannot start
// at all (CivetWeb's 100 KB threads, which serve /metrics, fail with EINVAL). Loaded
// on demand, its storage is allocated only in the threads that call it.
#pragma once

#include <cublasLt.h>

namespace conveyor::cuda {

struct CublasLtApi {
  decltype(&::cublasLtCreate) create = nullptr;
  decltype(&::cublasLtDestroy) destroy = nullptr;
  decltype(&::cublasLtGetStatusName) status_name = nullptr;
  decltype(&::cublasLtGetStatusString) status_string = nullptr;
  decltype(&::cublasLtMatmul) matmul = nullptr;
  decltype(&::cublasLtMatmulAlgoGetHeuristic) algo_get_heuristic = nullptr;
  decltype(&::cublasLtMatmulDescCreate) matmul_desc_create = nullptr;
  decltype(&::cublasLtMatmulDescDestroy) matmul_desc_destroy = nullptr;
  decltype(&::cublasLtMatmulDescSetAttribute) matmul_desc_set_attribute = nullptr;
  decltype(&::cublasLtMatmulPreferenceCreate) preference_create = nullptr;
  decltype(&::cublasLtMatmulPreferenceDestroy) preference_destroy = nullptr;
  decltype(&::cublasLtMatmulPreferenceSetAttribute) preference_set_attribute = nullptr;
  decltype(&::cublasLtMatrixLayoutCreate) matrix_layout_create = nullptr;
  decltype(&::cublasLtMatrixLayoutDestroy) matrix_layout_destroy = nullptr;
};

// Loads the library once (thread-safe) and returns its entry points. Throws
// Error(kUnavailable) naming the library when it or a symbol cannot be loaded.
const CublasLtApi& cublaslt();
// Whether the library loads (for choosing a backend), without throwing.
bool cublaslt_available() noexcept;

}  // namespace conveyor::cuda
