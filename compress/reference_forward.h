// A small f32 forward pass of the Llama block, independent of the engine's backends:
// how compression sees what each linear layer reads. It runs the original model over
// calibration tokens one layer at a time and records the input of every linear (q/k/v
// read the attention norm's output, o the attention output, gate/up the FFN norm's
// output, down silu(gate) * up), which activation-aware scaling and Wanda pruning
// weigh the weights by.
//
// The block as the engine runs it (worker/llama_model.cpp): RMSNorm (sum of squares in
// double), RoPE as the ModelSpec says (kernels/rope_config.h: scaling, frequency
// factors, both pairings), causal grouped-query attention with the spec's sliding
// window, SwiGLU, residual adds; plain loops, so that a test can hold the engine's
// logits against it.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/model_source.h"
#include "common/model_spec.h"
#include "compress/f32_layer.h"
#include "kernels/cpu/thread_pool.h"

namespace conveyor::compress {

// What the linear layers of one block read, f32 [tokens, width], rows in token order.
struct LinearInputs {
  std::vector<float> attn;         // [tokens, hidden]: q, k and v
  std::vector<float> attn_output;  // [tokens, q_dim]: o
  std::vector<float> ffn;          // [tokens, hidden]: gate and up
  std::vector<float> down;         // [tokens, ff]: down
};

class ReferenceForward {
 public:
  // `sequence_lengths`: the tokens are that many sequences back to back, each from
  // position 0, none attending to another. Throws Error(kInvalidArgument) for an empty
  // or non-positive length or one beyond the spec's context.
  ReferenceForward(const ModelSpec& spec, ThreadPool& pool,
                   std::vector<std::int64_t> sequence_lengths);

  std::int64_t tokens() const { return tokens_; }

  // The embedding rows of `tokens`: f32 [tokens, hidden]. Throws
  // Error(kInvalidArgument) for a token outside the vocabulary or a count that
  // disagrees with the sequence lengths.
  std::vector<float> embed(const TensorRef& token_embd, std::span<const std::int32_t> tokens) const;

  // hidden += the block's attention and MLP outputs, in place; records what its
  // linears read when `record` is not null.
  void layer(const F32Layer& w, std::span<float> hidden, LinearInputs* record) const;

  // Logits f32 [tokens, vocab] after the final norm: `output` is output.weight, or
  // token_embd.weight when the embeddings are tied.
  std::vector<float> logits(std::span<const float> hidden, const TensorRef& output_norm,
                            const TensorRef& output) const;

 private:
  void attention(std::span<const float> q, std::span<const float> k, std::span<const float> v,
                 std::span<float> out) const;
  void rope(std::span<float> x, std::int64_t heads) const;

  ModelSpec spec_;
  ThreadPool& pool_;
  std::vector<std::int64_t> lengths_;
  std::vector<std::int32_t> positions_;  // per token
  std::vector<std::int64_t> starts_;     // per token: its sequence's first row
  std::int64_t tokens_ = 0;
  std::vector<float> inv_freq_;
};

// y f32 [m, n] = x [m, k] W^T (+ bias [n]) for W f32 [n, k], on the pool.
void linear_f32(ThreadPool& pool, std::span<const float> x, std::int64_t m, std::int64_t k,
                std::span<const float> w, std::int64_t n, std::span<const float> bias,
                std::span<float> y);

// The whole model over one sequence: logits f32 [tokens, vocab]. For tests and checks.
std::vector<float> reference_logits(const ModelSource& source, std::span<const std::int32_t> tokens,
                                    ThreadPool& pool);

}  // namespace conveyor::compress
