#include "common/quant/quantized_tensor.h"

#include <cstring>
#include <utility>

#include "common/half.h"
#include "common/quant/fp8_rows.h"
#include "common/quant/int4_groups.h"
#include "common/quant/int8_rows.h"
#include "common/quant/sparse24.h"
#include "common/status.h"

namespace conveyor::quant {
namespace {

// f16 is no quantisation, but a mixed model keeps some blocks at 16 bits through the
// same path.
QuantizedTensor round_to_f16(std::span<const float> w, std::int64_t n, std::int64_t k) {
  if (n < 1 || k < 1 || static_cast<std::int64_t>(w.size()) != n * k) {
    fail(ErrorCode::kInvalidArgument, "quantize_weight: f16 of a size that is not n * k");
  }
  QuantizedTensor t;
  t.dtype = DType::kF16;
  t.shape = {n, k};
  t.bytes.resize(w.size() * 2);
  for (std::size_t i = 0; i < w.size(); ++i) {
    const std::uint16_t h = fp32_to_fp16(w[i]);
    if ((h & 0x7C00) == 0x7C00) {
      fail(ErrorCode::kInvalidArgument,
           "quantize_weight: a weight that is not finite or beyond f16's range");
    }
    std::memcpy(t.bytes.data() + 2 * i, &h, 2);
  }
  return t;
}

}  // namespace

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
    case DType::kF16:
      return round_to_f16(w, n, k);
    default:
      break;
  }
  fail(ErrorCode::kInvalidArgument,
       "quantize_weight: no quantiser writes " + std::string(dtype_name(type)));
}

}  // namespace conveyor::quant
