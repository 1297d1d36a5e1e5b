#include "common/quant/quantized_tensor.h"

#include <utility>

#include "common/quant/fp8_rows.h"
#include "common/quant/int4_groups.h"
#include "common/quant/int8_rows.h"
#include "common/quant/sparse24.h"
#include "common/status.h"

namespace conveyor::quant {

TensorRef QuantizedTensor::view(std::string name) const {
  TensorRef t;
  t.name = std::move(name);
  t.dtype = dtype;
  t.shape = shape;
  t.bytes = bytes;
  t.scales = scales;
  return t;
}

QuantizedTensor quantize_weight(DType type, std::span<const float> w, std::int64_t n,
                                std::int64_t k) {
  switch (type) {
    case DType::kQ8_R:
      return quantize_int8_rows(w, n, k);
    case DType::kQ4_G128:
    case DType::kQ4_1:
      return quantize_int4_groups(type, w, n, k);
    case DType::kF8_R:
      return quantize_fp8_rows(w, n, k);
    case DType::kS24_F16:
      return quantize_sparse24(w, n, k);
    default:
      break;
  }
  fail(ErrorCode::kInvalidArgument,
       "quantize_weight: no quantiser writes " + std::string(dtype_name(type)));
}

}  // namespace conveyor::quant
