#include "kernels/cuda/cuda_weight.h"

#include <string>

#include "common/status.h"

namespace conveyor::cuda {

const CudaWeight& cuda_weight(const BackendWeight& w) {
  return static_cast<const CudaWeight&>(w);
}

const CudaWeight& matrix_weight(const BackendWeight& w, const char* what) {
  const CudaWeight& cw = cuda_weight(w);
  if (cw.vector())
    fail(ErrorCode::kInvalidArgument, std::string(what) + ": " + w.name() + " is not a matrix");
  return cw;
}

const float* vector_data(const BackendWeight& w, std::int64_t expected, const char* what) {
  const CudaWeight& cw = cuda_weight(w);
  if (!cw.vector() || w.rows() != expected) {
    fail(ErrorCode::kInvalidArgument, std::string(what) + ": weight " + w.name() +
                                          " is not a vector of " + std::to_string(expected));
  }
  return cw.floats();
}

}  // namespace conveyor::cuda
