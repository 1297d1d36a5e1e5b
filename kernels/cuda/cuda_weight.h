// A weight on the CUDA backend: its bytes in the device pool, dense or compressed.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>

#include "kernels/backend.h"
#include "kernels/cuda/pool_block.h"
#include "kernels/cuda/quant_gemm.h"

namespace conveyor::cuda {

// How a weight is kept on the device: dense in a cudaDataType, or in the compressed
// form it was stored in (its codes, plus its row scales in a second block) for the
// GEMMs that read that form (quant_gemm.h, fp8_gemm.h).
enum class WeightStorage { kDense, kQ8Rows, kQ4Groups, kF8Rows };

class CudaWeight final : public BackendWeight {
 public:
  // `data_bytes` and `scale_bytes` as the storage needs them (no scales: 0).
  CudaWeight(const TensorRef& tensor, std::int64_t rows, std::int64_t cols, bool vector,
             cudaDataType type, WeightStorage storage, std::size_t data_bytes,
             std::size_t scale_bytes, int device, std::shared_ptr<DevicePool> pool,
             std::shared_ptr<Usage> usage)
      : BackendWeight(tensor.name, rows, cols, tensor.dtype),
        device_(device),
        vector_(vector),
        type_(type),
        storage_(storage),
        block_(pool, data_bytes, "a weight"),
        scales_(scale_bytes > 0 ? std::make_unique<PoolBlock>(pool, scale_bytes, "weight scales")
                                : nullptr),
        usage_(std::move(usage)) {
    usage_->weight_bytes += resident_bytes();
  }
  ~CudaWeight() override {
    // A streamed layer's weight may still be read by queued kernels: its memory goes
    // back to the pool only once its device is done with it.
    if (cudaSetDevice(device_) == cudaSuccess) cudaDeviceSynchronize();
    usage_->weight_bytes -= resident_bytes();
  }
  std::size_t resident_bytes() const override {
    return block_.bytes() + (scales_ ? scales_->bytes() : 0);
  }
  bool vector() const { return vector_; }
  cudaDataType type() const { return type_; }
  WeightStorage storage() const { return storage_; }
  void* data() const { return block_.data(); }
  void* scales() const { return scales_ ? scales_->data() : nullptr; }
  const float* floats() const { return static_cast<const float*>(block_.data()); }
  // The kQ8Rows or kQ4Groups weight as quant_gemm reads it.
  cuda::QuantMatrix quant() const {
    cuda::QuantMatrix q;
    q.layout = storage_ == WeightStorage::kQ8Rows ? cuda::QuantLayout::kQ8Rows
                                                  : cuda::QuantLayout::kQ4Groups;
    q.data = static_cast<const std::uint8_t*>(block_.data());
    q.row_scales = static_cast<const __half*>(scales());
    q.rows = rows();
    q.cols = cols();
    return q;
  }

 private:
  int device_;
  bool vector_;
  cudaDataType type_;
  WeightStorage storage_;
  PoolBlock block_;
  std::unique_ptr<PoolBlock> scales_;
  std::shared_ptr<Usage> usage_;
};

// The backend's view of a weight it uploaded.
const CudaWeight& cuda_weight(const BackendWeight& w);
// A matrix, or Error(kInvalidArgument) naming `what` for a vector.
const CudaWeight& matrix_weight(const BackendWeight& w, const char* what);
// A vector of `expected` f32 values, or Error(kInvalidArgument) naming `what`.
const float* vector_data(const BackendWeight& w, std::int64_t expected, const char* what);

}  // namespace conveyor::cuda
