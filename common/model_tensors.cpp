#include "common/model_tensors.h"

#include <charconv>
#include <map>
#include <string_view>

#include "common/dequantize.h"
#include "common/model_source.h"
#include "common/status.h"

namespace conveyor {
namespace {

bool is_qkv_bias(std::string_view name) {
  return name.ends_with(".attn_q.bias") || name.ends_with(".attn_k.bias") ||
         name.ends_with(".attn_v.bias");
}

// The N of "blk.N.*", or -1 when `name` is not a block tensor.
std::int64_t block_index(std::string_view name) {
  constexpr std::string_view kPrefix = "blk.";
  if (!name.starts_with(kPrefix)) return -1;
  name.remove_prefix(kPrefix.size());
  std::int64_t index = -1;
  const auto [end, err] = std::from_chars(name.data(), name.data() + name.size(), index);
  if (err != std::errc() || end == name.data() || end == name.data() + name.size() || *end != '.') {
    return -1;
  }
  return index;
}

}  // namespace

std::vector<ExpectedTensor> expected_tensors(const ModelSpec& spec) {
  const std::int64_t hidden = spec.hidden_size;
  const std::int64_t ff = spec.intermediate_size;
  std::vector<ExpectedTensor> out;
  out.push_back({"token_embd.weight", {spec.vocab_size, hidden}});
  for (std::int64_t layer = 0; layer < spec.num_layers; ++layer) {
    const std::string blk = "blk." + std::to_string(layer) + ".";
    out.push_back({blk + "attn_norm.weight", {hidden}});
    out.push_back({blk + "attn_q.weight", {spec.q_dim(), hidden}});
    if (spec.qkv_bias) out.push_back({blk + "attn_q.bias", {spec.q_dim()}});
    out.push_back({blk + "attn_k.weight", {spec.kv_dim(), hidden}});
    if (spec.qkv_bias) out.push_back({blk + "attn_k.bias", {spec.kv_dim()}});
    out.push_back({blk + "attn_v.weight", {spec.kv_dim(), hidden}});
    if (spec.qkv_bias) out.push_back({blk + "attn_v.bias", {spec.kv_dim()}});
    out.push_back({blk + "attn_output.weight", {hidden, spec.q_dim()}});
    out.push_back({blk + "ffn_norm.weight", {hidden}});
    out.push_back({blk + "ffn_gate.weight", {ff, hidden}});
    out.push_back({blk + "ffn_up.weight", {ff, hidden}});
    out.push_back({blk + "ffn_down.weight", {hidden, ff}});
  }
  out.push_back({"output_norm.weight", {hidden}});
  if (!spec.tie_embeddings) out.push_back({"output.weight", {spec.vocab_size, hidden}});
  return out;
}

void check_tensor_shapes(const ModelSpec& spec, const std::vector<TensorRef>& tensors,
                         const std::string& origin) {
  std::map<std::string_view, const TensorRef*> by_name;
  for (const auto& t : tensors) {
    const std::string what = origin + ": tensor " + t.name;
    if (!by_name.emplace(t.name, &t).second) fail(ErrorCode::kMalformed, what + " appears twice");
    if (t.name == "output.weight" && spec.tie_embeddings) {
      fail(ErrorCode::kMalformed,
           what + " is present although the embeddings are tied to token_embd.weight");
    }
    if (is_qkv_bias(t.name) && !spec.qkv_bias) {
      fail(ErrorCode::kMalformed, what + " is present although the model has no q/k/v bias");
    }
    const std::int64_t block = block_index(t.name);
    if (block >= spec.num_layers) {
      fail(ErrorCode::kMalformed, what + " belongs to a block past the model's " +
                                      std::to_string(spec.num_layers) + " layers");
    }
  }
  for (const auto& expected : expected_tensors(spec)) {
    const auto it = by_name.find(expected.name);
    if (it == by_name.end()) {
      fail(ErrorCode::kNotFound, origin + ": required tensor " + expected.name + " is missing");
    }
    const TensorRef& t = *it->second;
    if (t.shape != expected.shape) {
      fail(ErrorCode::kMalformed, origin + ": tensor " + t.name + " has shape " +
                                      shape_string(t.shape) + " but the model spec implies " +
                                      shape_string(expected.shape));
    }
    // The shape now matches the spec, whose dimensions are validated, so the element
    // count cannot overflow.
    const auto bytes = dtype_bytes(t.dtype, static_cast<std::uint64_t>(t.elements()));
    if (!bytes || *bytes != t.bytes.size()) {
      fail(ErrorCode::kMalformed, origin + ": tensor " + t.name + " holds " +
                                      std::to_string(t.bytes.size()) + " bytes, which is not " +
                                      shape_string(t.shape) + " of " +
                                      std::string(dtype_name(t.dtype)));
    }
    if (!row_scales_match(t)) {
      fail(ErrorCode::kMalformed,
           origin + ": tensor " + t.name + " has " + std::to_string(t.scales.size()) +
               " bytes of row scales, which is not what " + shape_string(t.shape) + " of " +
               std::string(dtype_name(t.dtype)) + " needs");
    }
  }
}

void check_tensor_shapes(const ModelSource& source) {
  check_tensor_shapes(source.spec(), source.tensors(), source.path());
}

}  // namespace conveyor
