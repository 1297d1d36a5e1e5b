// `--prune layers:N`: whole blocks removed, the N that change the hidden state least.
// The original model runs over the calibration tokens (the reference forward, one block
// at a time, as compress_model() does); a block's similarity is the mean over tokens of
// the cosine between the hidden state entering it and the one leaving it. A block whose
// output is nearly its input adds little through the residual stream, so it is the
// cheapest to drop (the "unreasonable ineffectiveness of the deeper layers" observation).
//
// The blocks kept are then presented as a model of their own (WithoutBlocks): fewer
// layers in the spec, "blk.N." names renumbered contiguously, every other tensor as is;
// compression runs on that as on any source.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/model_source.h"
#include "compress/compress_options.h"

namespace conveyor::compress {

// Each block's mean cosine similarity between its input and output hidden states over
// `calibration` (run as calibration_sequences()). Throws Error(kInvalidArgument) for
// fewer than 2 tokens, and what loading and the reference forward throw.
std::vector<double> block_similarity(const ModelSource& source,
                                     std::span<const std::int32_t> calibration, int threads);

// The `n` blocks of highest similarity (ties: the later block), in ascending order.
// Throws Error(kInvalidArgument) unless 1 <= n < similarity.size().
std::vector<std::int64_t> blocks_to_remove(std::span<const double> similarity, std::int64_t n);

// What layers:N decided: every original block's similarity and the blocks removed.
struct LayerPruning {
  std::vector<double> similarity;
  std::vector<std::int64_t> removed;

  // For the scheme and the report.
  nlohmann::json json() const;
};

// layers:N as `options` ask, on `source`: the similarities given
// (options.block_similarity) or measured over `calibration`. Throws what
// check_layer_pruning(), block_similarity() and blocks_to_remove() throw.
LayerPruning plan_layer_pruning(const ModelSource& source, const CompressOptions& options,
                                std::span<const std::int32_t> calibration);

// `inner` without the blocks `removed` (ascending, original indices): num_layers
// reduced, the rest renumbered in order. Borrows `inner`, which must outlive it.
class WithoutBlocks final : public ModelSource {
 public:
  WithoutBlocks(const ModelSource& inner, std::span<const std::int64_t> removed);
  const ModelSpec& spec() const override { return spec_; }
  std::string format() const override { return inner_.format(); }
  std::string path() const override { return inner_.path(); }
  const std::vector<TensorRef>& tensors() const override { return tensors_; }
  const std::optional<TokenizerData>& tokenizer() const override { return inner_.tokenizer(); }
  Status tokenizer_status() const override { return inner_.tokenizer_status(); }

 private:
  const ModelSource& inner_;
  ModelSpec spec_;
  std::vector<TensorRef> tensors_;
};

}  // namespace conveyor::compress
