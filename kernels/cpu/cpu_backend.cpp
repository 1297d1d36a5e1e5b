#include "kernels/cpu/cpu_backend.h"

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <string>

#include "common/dequantize.h"
#include "common/sparse24.h"
#include "common/status.h"
#include "kernels/cpu/cpu_attention.h"
#include "kernels/cpu/cpu_elementwise.h"
#include "kernels/cpu/cpu_fp8_gemm.h"
#include "kernels/cpu/cpu_gemm.h"
#include "kernels/cpu/cpu_quant_gemm.h"
#include "kernels/cpu/cpu_quant_pack.h"
#include "kernels/cpu/cpu_rope.h"
#include "kernels/cpu/cpu_sparse24_gemm.h"
#include "kernels/cpu/cpu_sparse24_pack.h"
#include "kernels/cpu/step_checks.h"

namespace conveyor {
namespace {

// Cache-line and AVX-512 aligned.
constexpr std::size_t kAlignment = 64;

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

std::unique_ptr<void, AlignedFree> aligned_block(std::size_t bytes, bool zeroed) {
  const std::size_t rounded =
      (std::max<std::size_t>(bytes, 1) + kAlignment - 1) / kAlignment * kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (p == nullptr) {
    fail(ErrorCode::kResourceExhausted,
         "cpu backend: cannot allocate " + std::to_string(bytes) + " bytes");
  }
  if (zeroed) std::memset(p, 0, rounded);
  return std::unique_ptr<void, AlignedFree>(p);
}

class CpuBuffer final : public BackendBuffer {
 public:
  CpuBuffer(std::size_t bytes, std::shared_ptr<CpuBackend::Usage> usage)
      : memory_(aligned_block(bytes, true)), bytes_(bytes), usage_(std::move(usage)) {
    usage_->buffer_bytes += bytes_;
  }
  ~CpuBuffer() override { usage_->buffer_bytes -= bytes_; }
  void* data() override { return memory_.get(); }
  std::size_t bytes() const override { return bytes_; }

 private:
  std::unique_ptr<void, AlignedFree> memory_;
  std::size_t bytes_;
  std::shared_ptr<CpuBackend::Usage> usage_;
};

// 1-D weights are stored plainly as f32. 2-D weights are f32 in the GEMM's panel layout
// (cpu_gemm.h) or, unless the backend dequantises at load, quantised panels
// (cpu_quant_pack.h: GGUF block types, Q4_G128, Q8_R) or, for F8_R, the E4M3 codes
// [rows, cols] followed by the f32 row scales [rows] (cpu_fp8_gemm.h) or, for S24_F16,
// the kept half of the values and their positions (cpu_sparse24_pack.h); embedding
// lookups read any of them back row by row.
enum class WeightLayout { kVector, kF32Panels, kQuantPanels, kFp8Rows, kSparse24Panels };

class CpuWeight final : public BackendWeight {
 public:
  CpuWeight(const TensorRef& tensor, std::int64_t rows, std::int64_t cols, WeightLayout layout,
            cpu::QuantFormat format, std::size_t bytes, std::shared_ptr<CpuBackend::Usage> usage)
      : BackendWeight(tensor.name, rows, cols, tensor.dtype),
        layout_(layout),
        format_(format),
        bytes_(bytes),
        // Not zeroed: upload_weight writes every byte (and the panel padding).
        memory_(aligned_block(bytes_, false)),
        usage_(std::move(usage)) {
    usage_->weight_bytes += bytes_;
  }
  ~CpuWeight() override { usage_->weight_bytes -= bytes_; }
  std::size_t resident_bytes() const override { return bytes_; }
  WeightLayout layout() const { return layout_; }
  cpu::QuantFormat format() const { return format_; }
  void* data() { return memory_.get(); }
  const void* data() const { return memory_.get(); }
  float* floats() { return static_cast<float*>(memory_.get()); }
  const float* floats() const { return static_cast<const float*>(memory_.get()); }
  const std::uint8_t* bytes() const { return static_cast<const std::uint8_t*>(memory_.get()); }
  // kFp8Rows: the row scales after the codes.
  const float* fp8_scales() const {
    return reinterpret_cast<const float*>(bytes() + fp8_scales_offset(rows(), cols()));
  }
  static std::size_t fp8_scales_offset(std::int64_t rows, std::int64_t cols) {
    const auto codes = static_cast<std::size_t>(rows * cols);
    return (codes + alignof(float) - 1) / alignof(float) * alignof(float);
  }

 private:
  WeightLayout layout_;
  cpu::QuantFormat format_;  // for kQuantPanels
  std::size_t bytes_;
  std::unique_ptr<void, AlignedFree> memory_;
  std::shared_ptr<CpuBackend::Usage> usage_;
};

// Every weight a CpuBackend sees was made by CpuBackend::upload_weight.
const CpuWeight& cpu_weight(const BackendWeight& w) {
  return static_cast<const CpuWeight&>(w);
}

const CpuWeight& matrix_weight(const BackendWeight& w, const char* what) {
  const CpuWeight& cw = cpu_weight(w);
  if (cw.layout() == WeightLayout::kVector)
    fail(ErrorCode::kInvalidArgument, std::string(what) + ": " + w.name() + " is not a matrix");
  return cw;
}

const float* vector_data(const BackendWeight& w, const char* what) {
  const CpuWeight& cw = cpu_weight(w);
  if (cw.layout() != WeightLayout::kVector)
    fail(ErrorCode::kInvalidArgument, std::string(what) + ": " + w.name() + " is not a vector");
  return cw.floats();
}

class CpuStep final : public BackendStep {
 public:
  explicit CpuStep(StepLayout layout) : BackendStep(std::move(layout)) {}
};

std::uint64_t meminfo_kib(const std::string& key) {
  std::ifstream in("/proc/meminfo");
  std::string name;
  std::uint64_t value = 0;
  std::string unit;
  while (in >> name >> value >> unit) {
    if (name == key + ":") return value;
  }
  return 0;
}

// The cgroup v2 limit of this process's container, when it has one: "max" or an
// absent file means none. Kubernetes pods live under such limits, and MemAvailable
// does not see them.
std::optional<std::uint64_t> cgroup_bytes(const char* file) {
  std::ifstream in(std::string("/sys/fs/cgroup/") + file);
  std::string text;
  if (!(in >> text) || text == "max") return std::nullopt;
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

void check_width(const BackendWeight& w, std::int64_t expected, const char* what) {
  if (w.rows() != expected || w.cols() != 1) {
    fail(ErrorCode::kInvalidArgument, std::string(what) + ": weight " + w.name() +
                                          " does not have " + std::to_string(expected) +
                                          " elements");
  }
}

// Packs `rows` rows into panels of kPanelWidth rows, `panel_bytes` each from `packed`,
// one panel a task over the pool (packing a large model one thread at a time is a slow
// load): the last panel zeroed first for its padding rows, then pack(begin, end, thread)
// for every panel's rows [begin, end).
template <typename Pack>
void pack_panels(ThreadPool& pool, std::int64_t rows, void* packed, std::int64_t panel_bytes,
                 Pack&& pack) {
  const std::int64_t panels = (rows + cpu::kPanelWidth - 1) / cpu::kPanelWidth;
  std::memset(static_cast<std::uint8_t*>(packed) + (panels - 1) * panel_bytes, 0,
              static_cast<std::size_t>(panel_bytes));
  pool.run(panels, [&](std::int64_t panel, int thread) {
    const std::int64_t begin = panel * cpu::kPanelWidth;
    pack(begin, std::min(rows, begin + cpu::kPanelWidth), thread);
  });
}

void require_f32_kv(const KvLayerView& layer) {
  if (layer.dtype != DType::kF32) {
    fail(ErrorCode::kUnsupported,
         "cpu backend: K/V of type " + std::string(dtype_name(layer.dtype)) + "; it keeps f32");
  }
}

}  // namespace

CpuBackend::CpuBackend(const CpuBackendOptions& options)
    : pool_(options.threads),
      isa_(options.isa.value_or(detect_cpu_isa())),
      dequantize_weights_(options.dequantize_weights),
      usage_(std::make_shared<Usage>()) {
  // Refuse an instruction set the CPU lacks rather than crash on the first op.
  if (static_cast<int>(isa_) > static_cast<int>(detect_cpu_isa())) isa_ = detect_cpu_isa();
}

BackendCapabilities CpuBackend::capabilities() const {
  BackendCapabilities caps;
  caps.device_memory = false;
  caps.quantized_weights = !dequantize_weights_;
  caps.paged_attention = true;
  caps.threads = pool_.size();
  caps.weight_dtypes = {DType::kF32,     DType::kF16,  DType::kBF16, DType::kQ8_0,
                        DType::kQ4_0,    DType::kQ4_1, DType::kQ4_K, DType::kQ6_K,
                        DType::kQ4_G128, DType::kQ8_R, DType::kF8_R, DType::kS24_F16};
  return caps;
}

BackendMemoryInfo CpuBackend::memory_info() const {
  BackendMemoryInfo info;
  info.total_bytes = meminfo_kib("MemTotal") * 1024;
  info.available_bytes = meminfo_kib("MemAvailable") * 1024;
  if (const auto limit = cgroup_bytes("memory.max")) {
    const std::uint64_t used = cgroup_bytes("memory.current").value_or(0);
    info.total_bytes = std::min(info.total_bytes, *limit);
    info.available_bytes = std::min(info.available_bytes, *limit > used ? *limit - used : 0);
  }
  info.weight_bytes = usage_->weight_bytes.load();
  info.buffer_bytes = usage_->buffer_bytes.load();
  return info;
}

std::unique_ptr<BackendBuffer> CpuBackend::allocate(std::size_t bytes) {
  return std::make_unique<CpuBuffer>(bytes, usage_);
}

void CpuBackend::copy_from_host(void* dst, const void* src, std::size_t bytes) {
  std::memcpy(dst, src, bytes);
}

void CpuBackend::copy_to_host(void* dst, const void* src, std::size_t bytes) {
  std::memcpy(dst, src, bytes);
}

std::shared_ptr<const BackendWeight> CpuBackend::upload_weight(const TensorRef& tensor) {
  if (tensor.shape.empty() || tensor.shape.size() > 2) {
    fail(ErrorCode::kUnsupported, "cpu backend: tensor " + tensor.name + " is not 1-D or 2-D");
  }
  const std::int64_t rows = tensor.shape[0];
  const std::int64_t cols = tensor.shape.size() == 2 ? tensor.shape[1] : 1;
  auto malformed = [&] {
    fail(ErrorCode::kMalformed, "cpu backend: tensor " + tensor.name +
                                    " has a shape that does not match its " +
                                    std::string(dtype_name(tensor.dtype)) + " data");
  };
  // 2^40 elements (4 TiB as f32) is beyond any real tensor and keeps rows * cols, with
  // panel padding, far from overflow.
  constexpr std::int64_t kMaxElements = std::int64_t{1} << 40;
  if (rows <= 0 || cols <= 0 || rows > kMaxElements / cols) malformed();
  const auto row_bytes = dtype_bytes(tensor.dtype, static_cast<std::uint64_t>(cols));
  const auto total_bytes = dtype_bytes(tensor.dtype, static_cast<std::uint64_t>(rows * cols));
  if (!row_bytes || !total_bytes || *total_bytes != tensor.bytes.size()) malformed();
  if (!row_scales_match(tensor)) malformed();
  const std::uint8_t* src = tensor.bytes.data();
  if (tensor.dtype == DType::kS24_F16) {
    // Positions that are not ascending would make the sparse kernel and the dense
    // weight disagree: refused whichever way the weight is kept.
    const std::int64_t blocks_per_row = cols / kS24Block;
    if (const auto bad = s24_first_bad_block(src, rows * blocks_per_row)) {
      fail(ErrorCode::kMalformed, "cpu backend: tensor " + tensor.name + ": 2:4 block " +
                                      std::to_string(*bad % blocks_per_row) + " of row " +
                                      std::to_string(*bad / blocks_per_row) +
                                      " names positions that are not ascending");
    }
  }
  if (tensor.shape.size() == 1) {
    auto weight = std::make_shared<CpuWeight>(
        tensor, rows, cols, WeightLayout::kVector, cpu::QuantFormat::kNibble,
        static_cast<std::size_t>(rows) * sizeof(float), usage_);
    dequantize_tensor(tensor, {weight->floats(), static_cast<std::size_t>(rows)});
    return weight;
  }
  const std::int64_t panels = (rows + cpu::kPanelWidth - 1) / cpu::kPanelWidth;
  if (tensor.dtype == DType::kF8_R && !dequantize_weights_) {
    // Codes as stored, then the scales decoded to f32.
    const std::size_t scales_offset = CpuWeight::fp8_scales_offset(rows, cols);
    auto weight = std::make_shared<CpuWeight>(
        tensor, rows, cols, WeightLayout::kFp8Rows, cpu::QuantFormat::kNibble,
        scales_offset + static_cast<std::size_t>(rows) * sizeof(float), usage_);
    auto* dst = static_cast<std::uint8_t*>(weight->data());
    std::memcpy(dst, src, tensor.bytes.size());
    auto* scales = reinterpret_cast<float*>(dst + scales_offset);
    for (std::int64_t r = 0; r < rows; ++r)
      scales[r] = tensor_row_scale(tensor, r);
    return weight;
  }
  if (tensor.dtype == DType::kS24_F16 && !dequantize_weights_) {
    const std::int64_t panel_bytes = cpu::s24_panel_bytes(cols);
    auto weight = std::make_shared<CpuWeight>(
        tensor, rows, cols, WeightLayout::kSparse24Panels, cpu::QuantFormat::kNibble,
        static_cast<std::size_t>(cpu::s24_packed_bytes(rows, cols)), usage_);
    auto* dst = static_cast<std::uint8_t*>(weight->data());
    pack_panels(pool_, rows, dst, panel_bytes, [&](std::int64_t begin, std::int64_t end, int) {
      cpu::pack_s24_rows(src + static_cast<std::uint64_t>(begin) * *row_bytes, begin, end, cols,
                         dst);
    });
    return weight;
  }
  // Q8_R's panels hold groups of 16 k values; another k is dequantised instead.
  std::optional<cpu::QuantFormat> format = cpu::quant_format_for(tensor.dtype);
  if (format && cols % cpu::quant_format_layout(*format).group != 0) format.reset();
  if (format && !dequantize_weights_) {
    const std::int64_t panel_bytes = cpu::quant_panel_bytes(*format, cols);
    auto weight =
        std::make_shared<CpuWeight>(tensor, rows, cols, WeightLayout::kQuantPanels, *format,
                                    static_cast<std::size_t>(panels * panel_bytes), usage_);
    auto* dst = static_cast<std::uint8_t*>(weight->data());
    pack_panels(pool_, rows, dst, panel_bytes, [&](std::int64_t begin, std::int64_t end, int) {
      float row_scales[cpu::kPanelWidth];
      for (std::int64_t r = begin; r < end; ++r)
        row_scales[r - begin] = tensor_row_scale(tensor, r);
      cpu::pack_quant_rows(tensor.dtype, src + static_cast<std::uint64_t>(begin) * *row_bytes,
                           row_scales, begin, end, cols, dst);
    });
    return weight;
  }
  auto weight = std::make_shared<CpuWeight>(
      tensor, rows, cols, WeightLayout::kF32Panels, cpu::QuantFormat::kNibble,
      static_cast<std::size_t>(cpu::packed_weight_floats(rows, cols)) * sizeof(float), usage_);
  float* dst = weight->floats();
  const std::int64_t panel_floats = cpu::kPanelWidth * cols;
  std::vector<std::vector<float>> staging(static_cast<std::size_t>(pool_.size()));
  pack_panels(pool_, rows, dst, panel_floats * static_cast<std::int64_t>(sizeof(float)),
              [&](std::int64_t begin, std::int64_t end, int thread) {
                auto& rows_f32 = staging[static_cast<std::size_t>(thread)];
                rows_f32.resize(static_cast<std::size_t>(cpu::kPanelWidth * cols));
                for (std::int64_t r = begin; r < end; ++r) {
                  dequantize_row(tensor.dtype, src + static_cast<std::uint64_t>(r) * *row_bytes,
                                 rows_f32.data() + (r - begin) * cols, cols,
                                 tensor_row_scale(tensor, r));
                }
                cpu::pack_weight_rows(rows_f32.data(), begin, end, cols, dst);
              });
  return weight;
}

void CpuBackend::gemm(const float* x, std::int64_t m, const BackendWeight& w, float* y,
                      const GemmOptions& options) {
  if (options.bias != nullptr) check_width(*options.bias, w.rows(), "gemm bias");
  const CpuWeight& cw = matrix_weight(w, "gemm");
  const float* bias = options.bias != nullptr ? vector_data(*options.bias, "gemm bias") : nullptr;
  const cpu::GemmOperands operands{x, y, bias, m, w.rows(), w.cols(), options.accumulate};
  if (cw.layout() == WeightLayout::kQuantPanels) {
    cpu::gemm_quant(pool_, isa_, {operands, cw.bytes(), cw.format()}, gemm_scratch_);
    return;
  }
  if (cw.layout() == WeightLayout::kFp8Rows) {
    cpu::gemm_fp8(pool_, isa_, {operands, cw.bytes(), cw.fp8_scales()}, fp8_scratch_);
    return;
  }
  if (cw.layout() == WeightLayout::kSparse24Panels) {
    cpu::gemm_s24(pool_, isa_, {operands, cw.bytes()});
    return;
  }
  cpu::gemm_f32(pool_, isa_, {operands, cw.floats(), 0});
}

void CpuBackend::rmsnorm(float* x, const float* residual_add, std::int64_t rows,
                         const BackendWeight& weight, float eps, float* out) {
  cpu::rmsnorm_f32(pool_, x, residual_add, rows, weight.rows(), vector_data(weight, "rmsnorm"), eps,
                   out);
}

std::unique_ptr<BackendStep> CpuBackend::prepare_step(StepLayout layout) {
  check_step_layout(layout);
  return std::make_unique<CpuStep>(std::move(layout));
}

void CpuBackend::embed(const BackendWeight& table, const BackendStep& step, float* out) {
  const CpuWeight& cw = matrix_weight(table, "embed");
  const std::vector<std::int32_t>& tokens = step.layout().tokens;
  for (std::int32_t token : tokens) {
    if (token < 0 || token >= table.rows()) {
      fail(ErrorCode::kInvalidArgument, "embed: token " + std::to_string(token) +
                                            " outside a vocabulary of " +
                                            std::to_string(table.rows()));
    }
  }
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    float* row = out + static_cast<std::int64_t>(i) * table.cols();
    if (cw.layout() == WeightLayout::kQuantPanels) {
      cpu::unpack_quant_row(cw.format(), cw.bytes(), tokens[i], table.cols(), row);
    } else if (cw.layout() == WeightLayout::kFp8Rows) {
      cpu::unpack_fp8_row(cw.bytes(), cw.fp8_scales(), tokens[i], table.cols(), row);
    } else if (cw.layout() == WeightLayout::kSparse24Panels) {
      cpu::unpack_s24_row(cw.bytes(), tokens[i], table.cols(), row);
    } else {
      cpu::unpack_weight_row(cw.floats(), tokens[i], table.cols(), row);
    }
  }
}

void CpuBackend::rope(float* q, float* k, const BackendStep& step, const RopeConfig& config) {
  if (static_cast<std::int64_t>(config.inv_freq.size()) * 2 != config.head_dim) {
    fail(ErrorCode::kInvalidArgument, "rope: inv_freq does not cover head_dim");
  }
  cpu::rope_f32(pool_, q, k, step.layout().positions, config);
}

void CpuBackend::store_kv(const float* k, const float* v, const BackendStep& step,
                          const KvLayerView& layer) {
  require_f32_kv(layer);
  cpu::store_kv_f32(k, v, step.layout().slots, layer);
}

void CpuBackend::attention(const float* q, const KvLayerView& layer, const BackendStep& step,
                           const AttentionConfig& config, float* out) {
  require_f32_kv(layer);
  cpu::attention_f32(pool_, isa_, q, layer, step.layout().sequences, config, out,
                     attention_scratch_);
}

void CpuBackend::swiglu(const float* gate, const float* up, std::int64_t n, float* out) {
  cpu::swiglu_f32(pool_, gate, up, n, out);
}

void CpuBackend::logits(const float* hidden, const BackendStep& step, const BackendWeight& norm,
                        float eps, const BackendWeight& output, float* out) {
  const std::vector<std::int64_t>& rows = step.layout().logit_rows;
  const std::int64_t width = output.cols();
  check_width(norm, width, "logits norm");
  const auto count = static_cast<std::int64_t>(rows.size());
  // Gather first: only the chosen rows are normed and projected.
  logits_rows_.resize(static_cast<std::size_t>(2 * count * width));
  float* gathered = logits_rows_.data();
  float* normed = gathered + count * width;
  cpu::gather_rows_f32(hidden, width, rows, gathered);
  cpu::rmsnorm_f32(pool_, gathered, nullptr, count, width, vector_data(norm, "logits norm"), eps,
                   normed);
  gemm(normed, count, output, out);
}

void CpuBackend::argmax(const float* logits, std::int64_t rows, std::int64_t vocab,
                        std::int32_t* host_out) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* row = logits + r * vocab;
    // Comparisons with NaN are false, so NaN is never chosen; ties keep the first.
    float best = -std::numeric_limits<float>::infinity();
    std::int32_t best_index = -1;
    for (std::int64_t i = 0; i < vocab; ++i) {
      if (row[i] > best) {
        best = row[i];
        best_index = static_cast<std::int32_t>(i);
      }
    }
    host_out[r] = best_index;
  }
}

std::unique_ptr<Backend> make_cpu_backend(const CpuBackendOptions& options) {
  return std::make_unique<CpuBackend>(options);
}

}  // namespace conveyor
