#include "coordinator/cluster/model_footprint.h"

#include <algorithm>
#include <charconv>
#include <string>

namespace conveyor {

ModelFootprint footprint_of(const ModelSource& source, std::uint64_t kv_bytes_all_layers) {
  const ModelSpec& spec = source.spec();
  ModelFootprint f;
  f.layer_bytes.assign(static_cast<std::size_t>(spec.num_layers), 0);
  std::uint64_t embedding = 0;
  bool has_output = false;
  for (const TensorRef& t : source.tensors()) {
    const std::uint64_t bytes = t.bytes.size() + t.scales.size();
    if (t.name.rfind("blk.", 0) == 0) {
      std::int64_t layer = -1;
      const char* begin = t.name.data() + 4;
      const char* end = t.name.data() + t.name.size();
      (void)std::from_chars(begin, end, layer);  // a name that does not parse stays -1
      if (layer >= 0 && layer < spec.num_layers)
        f.layer_bytes[static_cast<std::size_t>(layer)] += bytes;
    } else if (t.name == "token_embd.weight") {
      embedding = bytes;
    } else {
      has_output = has_output || t.name == "output.weight";
      f.head_bytes += bytes;  // output_norm, output
    }
  }
  f.embedding_bytes = embedding;
  if (!has_output) f.head_bytes += embedding;  // tied: the head reads the embedding
  // A layer without weights of its own still costs something to run.
  for (std::uint64_t& b : f.layer_bytes)
    b = std::max<std::uint64_t>(b, 1);
  f.kv_bytes_per_layer =
      spec.num_layers > 0 ? kv_bytes_all_layers / static_cast<std::uint64_t>(spec.num_layers) : 0;
  return f;
}

}  // namespace conveyor
