#include "compress/reference_forward.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "common/dequantize.h"
#include "common/quant/dot.h"
#include "common/status.h"
#include "kernels/rope_config.h"

namespace conveyor::compress {
namespace {

void rmsnorm(std::span<const float> x, std::int64_t rows, std::int64_t cols,
             std::span<const float> weight, float eps, std::span<float> out) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* in = x.data() + r * cols;
    double squares = 0;
    for (std::int64_t i = 0; i < cols; ++i)
      squares += static_cast<double>(in[i]) * in[i];
    const float inv_rms =
        1.0f / std::sqrt(static_cast<float>(squares / static_cast<double>(cols)) + eps);
    for (std::int64_t i = 0; i < cols; ++i)
      out[static_cast<std::size_t>(r * cols + i)] =
          weight[static_cast<std::size_t>(i)] * (in[i] * inv_rms);
  }
}

}  // namespace

void linear_f32(ThreadPool& pool, std::span<const float> x, std::int64_t m, std::int64_t k,
                std::span<const float> w, std::int64_t n, std::span<const float> bias,
                std::span<float> y) {
  if (static_cast<std::int64_t>(x.size()) != m * k ||
      static_cast<std::int64_t>(w.size()) != n * k ||
      static_cast<std::int64_t>(y.size()) != m * n ||
      (!bias.empty() && static_cast<std::int64_t>(bias.size()) != n)) {
    fail(ErrorCode::kInvalidArgument, "linear_f32: sizes disagree");
  }
  // Each weight row is read once and met with every input row while it is in cache.
  pool.parallel_ranges(n, 8, [&](std::int64_t begin, std::int64_t end, int) {
    for (std::int64_t r = begin; r < end; ++r) {
      const float* wr = w.data() + r * k;
      const float b = bias.empty() ? 0.0f : bias[static_cast<std::size_t>(r)];
      for (std::int64_t i = 0; i < m; ++i)
        y[static_cast<std::size_t>(i * n + r)] =
            static_cast<float>(quant::dot(x.data() + i * k, wr, k)) + b;
    }
  });
}

ReferenceForward::ReferenceForward(const ModelSpec& spec, ThreadPool& pool,
                                   std::vector<std::int64_t> sequence_lengths)
    : spec_(spec), pool_(pool), lengths_(std::move(sequence_lengths)) {
  if (lengths_.empty()) fail(ErrorCode::kInvalidArgument, "reference forward: no sequences");
  for (std::int64_t n : lengths_) {
    if (n < 1 || n > spec_.max_positions || n > std::numeric_limits<std::int32_t>::max()) {
      fail(ErrorCode::kInvalidArgument, "reference forward: a sequence of " + std::to_string(n) +
                                            " tokens (the context is " +
                                            std::to_string(spec_.max_positions) + ")");
    }
    for (std::int64_t p = 0; p < n; ++p) {
      positions_.push_back(static_cast<std::int32_t>(p));
      starts_.push_back(tokens_);
    }
    tokens_ += n;
  }
  inv_freq_ = rope_inv_freq(spec_);
}

std::vector<float> ReferenceForward::embed(const TensorRef& token_embd,
                                           std::span<const std::int32_t> tokens) const {
  const std::int64_t hidden = spec_.hidden_size;
  if (static_cast<std::int64_t>(tokens.size()) != tokens_) {
    fail(ErrorCode::kInvalidArgument, "reference forward: " + std::to_string(tokens.size()) +
                                          " tokens for sequences of " + std::to_string(tokens_));
  }
  if (token_embd.shape.size() != 2 || token_embd.shape[1] != hidden) {
    fail(ErrorCode::kInvalidArgument, "reference forward: token_embd is not [vocab, hidden]");
  }
  const std::uint64_t row_bytes =
      *dtype_bytes(token_embd.dtype, static_cast<std::uint64_t>(hidden));
  std::vector<float> out(static_cast<std::size_t>(tokens_ * hidden));
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    const std::int32_t id = tokens[t];
    if (id < 0 || id >= token_embd.shape[0]) {
      fail(ErrorCode::kInvalidArgument,
           "reference forward: token " + std::to_string(id) + " is outside the vocabulary");
    }
    dequantize_row(token_embd.dtype,
                   token_embd.bytes.data() + static_cast<std::uint64_t>(id) * row_bytes,
                   out.data() + static_cast<std::int64_t>(t) * hidden, hidden,
                   tensor_row_scale(token_embd, id));
  }
  return out;
}

void ReferenceForward::rope(std::span<float> x, std::int64_t heads) const {
  const std::int64_t head_dim = spec_.head_dim;
  const std::int64_t half = head_dim / 2;
  std::vector<float> cos(static_cast<std::size_t>(half));
  std::vector<float> sin(static_cast<std::size_t>(half));
  for (std::int64_t t = 0; t < tokens_; ++t) {
    const float position = static_cast<float>(positions_[static_cast<std::size_t>(t)]);
    for (std::int64_t i = 0; i < half; ++i) {
      // The angle rounded to f32, then cos and sin in double, as transformers computes them.
      const double angle = static_cast<double>(position * inv_freq_[static_cast<std::size_t>(i)]);
      cos[static_cast<std::size_t>(i)] = static_cast<float>(std::cos(angle));
      sin[static_cast<std::size_t>(i)] = static_cast<float>(std::sin(angle));
    }
    for (std::int64_t h = 0; h < heads; ++h) {
      float* head = x.data() + (t * heads + h) * head_dim;
      for (std::int64_t i = 0; i < half; ++i) {
        // Half-split pairs (i, i + d/2) as Hugging Face; interleaved (2i, 2i + 1) as GGUF.
        const std::int64_t a_index = spec_.rope_pairing == RopePairing::kHalfSplit ? i : 2 * i;
        const std::int64_t b_index =
            spec_.rope_pairing == RopePairing::kHalfSplit ? i + half : 2 * i + 1;
        const float a = head[a_index];
        const float b = head[b_index];
        head[a_index] = a * cos[static_cast<std::size_t>(i)] - b * sin[static_cast<std::size_t>(i)];
        head[b_index] = b * cos[static_cast<std::size_t>(i)] + a * sin[static_cast<std::size_t>(i)];
      }
    }
  }
}

void ReferenceForward::attention(std::span<const float> q, std::span<const float> k,
                                 std::span<const float> v, std::span<float> out) const {
  const std::int64_t head_dim = spec_.head_dim;
  const std::int64_t heads = spec_.num_heads;
  const std::int64_t group = heads / spec_.num_kv_heads;
  const std::int64_t q_width = spec_.q_dim();
  const std::int64_t kv_width = spec_.kv_dim();
  const auto scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
  pool_.parallel_ranges(tokens_, 1, [&](std::int64_t begin, std::int64_t end, int) {
    std::vector<float> scores;
    for (std::int64_t t = begin; t < end; ++t) {
      const std::int64_t start = starts_[static_cast<std::size_t>(t)];
      const std::int64_t position = positions_[static_cast<std::size_t>(t)];
      const std::int64_t first =
          spec_.sliding_window > 0 ? std::max<std::int64_t>(0, position - spec_.sliding_window + 1)
                                   : 0;
      const std::int64_t keys = position - first + 1;
      scores.resize(static_cast<std::size_t>(keys));
      for (std::int64_t h = 0; h < heads; ++h) {
        const float* qh = q.data() + t * q_width + h * head_dim;
        const std::int64_t kv_head = h / group;
        float max_score = -std::numeric_limits<float>::infinity();
        for (std::int64_t j = 0; j < keys; ++j) {
          const float* kj = k.data() + (start + first + j) * kv_width + kv_head * head_dim;
          const float s = static_cast<float>(quant::dot(qh, kj, head_dim)) * scale;
          scores[static_cast<std::size_t>(j)] = s;
          max_score = std::max(max_score, s);
        }
        double sum = 0;
        for (float& s : scores) {
          s = std::exp(s - max_score);
          sum += s;
        }
        float* oh = out.data() + t * q_width + h * head_dim;
        std::fill(oh, oh + head_dim, 0.0f);
        for (std::int64_t j = 0; j < keys; ++j) {
          const float p = static_cast<float>(scores[static_cast<std::size_t>(j)] / sum);
          const float* vj = v.data() + (start + first + j) * kv_width + kv_head * head_dim;
          for (std::int64_t d = 0; d < head_dim; ++d)
            oh[d] += p * vj[d];
        }
      }
    }
  });
}

void ReferenceForward::layer(const F32Layer& w, std::span<float> hidden,
                             LinearInputs* record) const {
  const std::int64_t m = tokens_;
  const std::int64_t dim = spec_.hidden_size;
  const std::int64_t ff = spec_.intermediate_size;
  const std::int64_t q_dim = spec_.q_dim();
  const std::int64_t kv_dim = spec_.kv_dim();
  const auto eps = static_cast<float>(spec_.rms_norm_eps);
  if (static_cast<std::int64_t>(hidden.size()) != m * dim) {
    fail(ErrorCode::kInvalidArgument, "reference forward: hidden states of the wrong size");
  }
  auto buffer = [](std::int64_t rows, std::int64_t cols) {
    return std::vector<float>(static_cast<std::size_t>(rows * cols));
  };

  // Attention: x += W_o attn(rope(W_q n), rope(W_k n), W_v n), n = norm(x).
  std::vector<float> normed = buffer(m, dim);
  rmsnorm(hidden, m, dim, w.attn_norm, eps, normed);
  std::vector<float> q = buffer(m, q_dim);
  std::vector<float> k = buffer(m, kv_dim);
  std::vector<float> v = buffer(m, kv_dim);
  linear_f32(pool_, normed, m, dim, w.q, q_dim, w.q_bias, q);
  linear_f32(pool_, normed, m, dim, w.k, kv_dim, w.k_bias, k);
  linear_f32(pool_, normed, m, dim, w.v, kv_dim, w.v_bias, v);
  rope(q, spec_.num_heads);
  rope(k, spec_.num_kv_heads);
  std::vector<float> attn = buffer(m, q_dim);
  attention(q, k, v, attn);
  std::vector<float> delta = buffer(m, dim);
  linear_f32(pool_, attn, m, q_dim, w.o, dim, {}, delta);
  for (std::size_t i = 0; i < hidden.size(); ++i)
    hidden[i] += delta[i];
  if (record != nullptr) {
    record->attn = std::move(normed);
    record->attn_output = std::move(attn);
    normed = buffer(m, dim);
  }

  // MLP: x += W_down (silu(W_gate n) * W_up n), n = norm(x).
  rmsnorm(hidden, m, dim, w.ffn_norm, eps, normed);
  std::vector<float> gate = buffer(m, ff);
  std::vector<float> up = buffer(m, ff);
  linear_f32(pool_, normed, m, dim, w.gate, ff, {}, gate);
  linear_f32(pool_, normed, m, dim, w.up, ff, {}, up);
  for (std::size_t i = 0; i < gate.size(); ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
  linear_f32(pool_, gate, m, ff, w.down, dim, {}, delta);
  for (std::size_t i = 0; i < hidden.size(); ++i)
    hidden[i] += delta[i];
  if (record != nullptr) {
    record->ffn = std::move(normed);
    record->down = std::move(gate);
  }
}

std::vector<float> ReferenceForward::logits(std::span<const float> hidden,
                                            const TensorRef& output_norm,
                                            const TensorRef& output) const {
  const std::int64_t dim = spec_.hidden_size;
  const std::int64_t vocab = spec_.vocab_size;
  std::vector<float> normed(hidden.size());
  const std::vector<float> norm = dequantize_tensor(output_norm);
  rmsnorm(hidden, tokens_, dim, norm, static_cast<float>(spec_.rms_norm_eps), normed);
  const std::vector<float> head = dequantize_tensor(output);
  std::vector<float> out(static_cast<std::size_t>(tokens_ * vocab));
  linear_f32(pool_, normed, tokens_, dim, head, vocab, {}, out);
  return out;
}

std::vector<float> reference_logits(const ModelSource& source, std::span<const std::int32_t> tokens,
                                    ThreadPool& pool) {
  const ModelSpec& spec = source.spec();
  const ReferenceForward forward(spec, pool, {static_cast<std::int64_t>(tokens.size())});
  const TensorRef& embd = source.require("token_embd.weight");
  std::vector<float> hidden = forward.embed(embd, tokens);
  for (std::int64_t l = 0; l < spec.num_layers; ++l)
    forward.layer(load_f32_layer(source, l), hidden, nullptr);
  return forward.logits(hidden, source.require("output_norm.weight"),
                        spec.tie_embeddings ? embd : source.require("output.weight"));
}

}  // namespace conveyor::compress
