// Whether 2:4 structured-sparse GEMMs (kS24_F16 weights) could run on the sparse tensor
// cores through cuSPARSELt. The library is not part of the CUDA toolkit and is often
// absent, so it is looked for at run time rather than linked. The backend does not call
// it yet: S24_F16 weights are dequantised at upload and run dense either way, and
// report_sparse24_fallback() says so once per process.
#pragma once

#include <string>

namespace conveyor::cuda {

// Tries dlopen("libcusparseLt.so.0") once (thread-safe; later calls return the cached
// answer) and whether it exports cusparseLtInit. The library is closed again: nothing
// uses it yet.
bool cusparselt_available() noexcept;

// Logs, the first time it is called in the process, that 2:4 sparse weights run dense:
// "2:4 sparse weights: cuSPARSELt not found, running them dense" where the library is
// absent. For the CUDA backend to call when it uploads an S24_F16 weight.
void report_sparse24_fallback();
// What report_sparse24_fallback() says, as it depends on the probe.
std::string sparse24_fallback_note();

}  // namespace conveyor::cuda
