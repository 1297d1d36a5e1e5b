// Loads a model (a tests/fixtures/hf-tiny directory, or any path open_model_source
// takes) and the fixtures' reference.json into a ready-to-run LlamaModel on the CPU
// backend, or on a backend the caller gives.
#pragma once

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/loader/open_model.h"
#include "coordinator/scheduler/block_allocator.h"
#include "kernels/cpu/cpu_backend.h"
#include "worker/llama_model.h"

namespace conveyor::testing {

struct ReferenceCase {
  std::vector<std::int32_t> input_ids;
  std::vector<std::vector<float>> logits;  // [positions][vocab]
  std::vector<std::int32_t> greedy_new_tokens;
};

inline std::string hf_tiny_dir(const std::string& model) {
  return std::string(CONVEYOR_FIXTURES_DIR) + "/hf-tiny/" + model;
}

inline std::vector<ReferenceCase> load_reference(const std::string& model) {
  std::ifstream in(hf_tiny_dir(model) + "/reference.json");
  const auto json = nlohmann::json::parse(in);
  std::vector<ReferenceCase> cases;
  for (const auto& c : json.at("cases")) {
    ReferenceCase rc;
    rc.input_ids = c.at("input_ids").get<std::vector<std::int32_t>>();
    rc.logits = c.at("logits").get<std::vector<std::vector<float>>>();
    rc.greedy_new_tokens = c.at("greedy_new_tokens").get<std::vector<std::int32_t>>();
    cases.push_back(std::move(rc));
  }
  return cases;
}

// A model with its backend, source and cache, all owned together.
struct LoadedModel {
  std::unique_ptr<ModelSource> source;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<KvCache> cache;
  // Which blocks each sequence uses: the coordinator's ledger, here driven by hand.
  std::unique_ptr<BlockAllocator> blocks;
  std::unique_ptr<LlamaModel> model;
};

inline LoadedModel load_model(const std::string& path, int threads = 2,
                              std::int64_t block_size = 16, std::int64_t num_blocks = 64,
                              LayerRange range = {}, std::unique_ptr<Backend> backend = nullptr) {
  LoadedModel m;
  m.source = open_model_source(path).value();
  const ModelSpec& spec = m.source->spec();
  if (range.size() == 0) range = LayerRange::all(spec);
  if (backend) {
    m.backend = std::move(backend);
  } else {
    CpuBackendOptions options;
    options.threads = threads;
    m.backend = std::make_unique<CpuBackend>(options);
  }
  KvCacheConfig kv;
  kv.num_layers = range.size();
  kv.num_blocks = num_blocks;
  kv.block_size = block_size;
  kv.kv_dim = spec.kv_dim();
  m.cache = std::make_unique<KvCache>(*m.backend, kv);
  m.blocks = std::make_unique<BlockAllocator>(num_blocks, block_size);
  m.model = std::make_unique<LlamaModel>(
      *m.backend, ModelWeights::load(*m.backend, *m.source, range), *m.cache);
  return m;
}

inline float max_abs_error(std::span<const float> got, const std::vector<float>& want) {
  float worst = 0;
  for (std::size_t i = 0; i < want.size(); ++i)
    worst = std::max(worst, std::fabs(got[i] - want[i]));
  return worst;
}

}  // namespace conveyor::testing
