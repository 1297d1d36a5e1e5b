// Cold weights: a stage whose weights exceed its budget streams the layers that do not
// fit, and computes exactly what the fully resident stage computes.
#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "common/loader/open_model.h"
#include "common/model_registry.h"
#include "common/status.h"
#include "common/synthetic/random_model_source.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/pin_recording_backend.h"
#include "worker/llama_model.h"
#include "worker/weight_store.h"

using namespace conveyor;

namespace {

// Twelve layers that outweigh the embedding and head, so that a quarter of the model
// still holds those and two streaming slots; rows of 64 take every 32-block
// quantisation as asked. An untied head: a separate output matrix.
ModelShape twelve_layer_shape() {
  return {"twelve-layer-test", 64, 12, 4, 2, 256, 256, false, 10000};
}

std::unique_ptr<ModelSource> random_model(DType dtype) {
  RandomModelOptions options;
  options.dtype = dtype;
  options.seed = 7;
  options.max_positions = 128;
  options.threads = 2;
  return make_random_model(twelve_layer_shape(), options);
}

std::unique_ptr<CpuBackend> cpu_backend() {
  CpuBackendOptions options;
  options.threads = 2;
  return std::make_unique<CpuBackend>(options);
}

// The smallest budget a stage of all layers accepts: embedding and head plus two slots.
std::uint64_t minimum_budget(const ModelSource& source) {
  auto backend = cpu_backend();
  const LayerRange all = LayerRange::all(source.spec());
  std::uint64_t largest = 0;
  for (std::int64_t l = all.begin; l < all.end; ++l) {
    largest =
        std::max(largest, ModelWeights::layer_bytes(ModelWeights::load_layer(*backend, source, l)));
  }
  return ModelWeights::load(*backend, source, all, 0).resident_bytes() + 2 * largest;
}

struct Run {
  std::vector<float> prefill_logits;  // every prompt position
  std::vector<std::int32_t> greedy;   // tokens decoded greedily after the prompt
  std::int64_t streamed_layers = 0;
  std::uint64_t budget_bytes = 0;
  std::uint64_t peak_weight_bytes = 0;  // sampled between steps and by the store
  StreamingStats stats;
};

// "blk.<layer><suffix>", built by appending: GCC 12 misreads a chain of + as an
// overlapping copy (-Wrestrict).
std::string tensor_name(std::int64_t layer, const char* suffix) {
  std::string name = "blk.";
  name += std::to_string(layer);
  name += suffix;
  return name;
}

std::int32_t argmax(std::span<const float> row) {
  return static_cast<std::int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
}

// A prompt, then greedy decoding, on one sequence with blocks 0..3.
Run run_model(const ModelSource& source, WeightBudget budget) {
  const ModelSpec& spec = source.spec();
  auto backend = cpu_backend();
  KvCache cache(*backend, {spec.num_layers, 4, 16, spec.kv_dim()});
  auto store = std::make_unique<WeightStore>(*backend, source, LayerRange::all(spec), budget);
  const WeightStore& weights = *store;
  LlamaModel model(*backend, std::move(store), cache);
  Run run;
  run.streamed_layers = weights.streamed_layers();
  run.budget_bytes = weights.budget_bytes();
  auto sample = [&] {
    run.peak_weight_bytes = std::max(run.peak_weight_bytes, backend->memory_info().weight_bytes);
  };
  sample();
  const std::vector<std::int32_t> table = {0, 1, 2, 3};
  std::vector<std::int32_t> tokens = {1, 17, 42, 99, 3, 250, 8};
  SequenceStep step{tokens, 0, table, LogitsWanted::kAll};
  StepResult result = model.forward(std::span<const SequenceStep>(&step, 1));
  sample();
  run.prefill_logits = result.logits;
  const auto prompt = static_cast<std::int64_t>(tokens.size());
  std::int32_t next = argmax(result.row(prompt - 1, spec.vocab_size));
  for (std::int64_t i = 0; i < 12; ++i) {
    run.greedy.push_back(next);
    const std::vector<std::int32_t> one = {next};
    const SequenceStep decode{one, prompt + i, table, LogitsWanted::kLast};
    next = argmax(model.forward(std::span<const SequenceStep>(&decode, 1)).row(0, spec.vocab_size));
    sample();
  }
  run.stats = weights.stats();
  run.peak_weight_bytes = std::max(run.peak_weight_bytes, run.stats.peak_backend_weight_bytes);
  return run;
}

}  // namespace

TEST_CASE("a budget of 50%, 25% or the minimum computes what the resident model computes") {
  for (const DType dtype : {DType::kF32, DType::kQ8_0, DType::kQ4_0}) {
    CAPTURE(dtype_name(dtype));
    const auto source = random_model(dtype);
    const Run full = run_model(*source, {});
    CHECK(full.streamed_layers == 0);
    CHECK(full.stats.uploads == 0);
    const std::uint64_t minimum = minimum_budget(*source);
    for (const WeightBudget budget : {WeightBudget{0, 1.0}, WeightBudget{0, 0.5},
                                      WeightBudget{0, 0.25}, WeightBudget{minimum, 0}}) {
      CAPTURE(budget.bytes);
      CAPTURE(budget.fraction);
      const Run run = run_model(*source, budget);
      CHECK(run.prefill_logits == full.prefill_logits);  // bit-identical
      CHECK(run.greedy == full.greedy);
      if (budget.fraction == 1.0) {
        CHECK(run.streamed_layers == 0);
        continue;
      }
      CHECK(run.streamed_layers > 0);
      CHECK(run.stats.uploads >= 13 * static_cast<std::uint64_t>(run.streamed_layers));
      CHECK(run.stats.bytes_uploaded > 0);
      // The arena: resident weights and the slots never exceed the budget.
      CHECK(run.peak_weight_bytes <= run.budget_bytes);
    }
  }
}

TEST_CASE("smaller budgets stream more layers") {
  const auto source = random_model(DType::kF32);
  auto backend = cpu_backend();
  const LayerRange all = LayerRange::all(source->spec());
  const WeightStore half(*backend, *source, all, {0, 0.5});
  const WeightStore quarter(*backend, *source, all, {0, 0.25});
  CHECK(half.streamed_layers() > 0);
  CHECK(quarter.streamed_layers() > half.streamed_layers());
  CHECK(half.resident_layers() + half.streamed_layers() == 12);
  CHECK(half.slots() >= 2);
  CHECK(half.bound_bytes() <= half.budget_bytes());
  CHECK(half.resident_bytes() + 2 * (half.total_bytes() - half.resident_bytes()) /
                                    static_cast<std::uint64_t>(half.streamed_layers()) <=
        half.budget_bytes() + 1);
  CHECK(half.total_bytes() == quarter.total_bytes());
}

TEST_CASE("no budget, a whole share, or a budget above the model keep everything resident") {
  const auto source = random_model(DType::kQ8_0);
  auto backend = cpu_backend();
  const LayerRange all = LayerRange::all(source->spec());
  const WeightStore unlimited(*backend, *source, all, {});
  const std::uint64_t total = unlimited.total_bytes();
  CHECK(total == unlimited.resident_bytes());
  for (const WeightBudget budget :
       {WeightBudget{0, 1.0}, WeightBudget{total, 0}, WeightBudget{total * 4, 0}}) {
    const WeightStore store(*backend, *source, all, budget);
    CHECK(store.streamed_layers() == 0);
    CHECK(store.slots() == 0);
    CHECK(store.resident_bytes() == total);
  }
}

TEST_CASE("a budget below the embedding, the head and two slots is refused, naming the minimum") {
  const auto source = random_model(DType::kF32);
  auto backend = cpu_backend();
  const std::uint64_t minimum = minimum_budget(*source);
  try {
    const WeightStore store(*backend, *source, LayerRange::all(source->spec()), {minimum - 1, 0});
    FAIL("a too-small budget was accepted");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kInvalidArgument);
    std::string expected = "(";
    expected += std::to_string(minimum);
    expected += " bytes)";
    CHECK(std::string(e.what()).find(expected) != std::string::npos);
  }
  // Nothing of the failed load stays alive.
  CHECK(backend->memory_info().weight_bytes == 0);
  CHECK_THROWS_AS(WeightStore(*backend, *source, LayerRange::all(source->spec()), {0, 0.01}),
                  Error);
}

TEST_CASE("the next layer uploads while the current one is held") {
  const auto source = random_model(DType::kQ4_0);
  auto backend = cpu_backend();
  WeightStore store(*backend, *source, LayerRange::all(source->spec()),
                    {minimum_budget(*source), 0});
  REQUIRE(store.slots() == 2);
  const std::int64_t k = store.resident_layers();
  REQUIRE(store.streamed_layers() >= 3);
  const LayerWeights& first = store.acquire(k);
  CHECK(first.attn_q->name() == tensor_name(k, ".attn_q.weight"));
  const LayerWeights& second = store.acquire(k + 1);
  CHECK(second.attn_q->name() == tensor_name(k + 1, ".attn_q.weight"));
  // Layer k+2 can only go into k's slot, after its release, while k+1 is still held.
  store.release(k);
  const LayerWeights& third = store.acquire(k + 2);
  CHECK(third.ffn_down->name() == tensor_name(k + 2, ".ffn_down.weight"));
  CHECK(store.stats().overlapped_uploads >= 1);
  store.release(k + 1);
  store.release(k + 2);
  CHECK(store.stats().uploads >= 3);
  CHECK(store.stats().peak_backend_weight_bytes <= store.budget_bytes());
}

TEST_CASE("layers acquired out of order still arrive") {
  const auto source = random_model(DType::kF32);
  auto backend = cpu_backend();
  WeightStore store(*backend, *source, LayerRange::all(source->spec()), {0, 0.25});
  const std::int64_t last = 11;
  REQUIRE(store.resident_layers() < last - 1);
  for (const std::int64_t l : {last, store.resident_layers(), last - 1, last}) {
    const LayerWeights& w = store.acquire(l);
    CHECK(w.attn_norm->name() == tensor_name(l, ".attn_norm.weight"));
    store.release(l);
  }
  // Releasing a layer not held is harmless.
  store.release(last);
  CHECK(store.stats().peak_backend_weight_bytes <= store.budget_bytes());
}

TEST_CASE("a later pipeline stage streams its own layers") {
  const auto source = random_model(DType::kF32);
  auto backend = cpu_backend();
  const WeightStore stage(*backend, *source, {2, 12}, {0, 0.5});
  CHECK(!stage.resident().has_embedding());
  CHECK(stage.resident().has_output());
  CHECK(stage.streamed_layers() > 0);
  CHECK(stage.resident_layers() + stage.streamed_layers() == 10);
}

TEST_CASE("a backend that pins gets the host bytes of the streamed layers only, read-only") {
  const auto source = random_model(DType::kBF16);
  testing::PinRecordingBackend backend;
  const LayerRange stage{2, 12};
  std::vector<testing::PinnedRange> pins;
  {
    const WeightStore store(backend, *source, stage, {0, 0.5});
    REQUIRE(store.streamed_layers() > 0);
    pins = backend.pins;
    REQUIRE(!pins.empty());
    std::uint64_t pinned = 0;
    for (const testing::PinnedRange& pin : pins) {
      CHECK(pin.read_only);
      CHECK(*pin.live);
      pinned += pin.bytes;
    }
    CHECK(pinned == store.pinned_host_bytes());
    const std::int64_t first_streamed = stage.begin + store.resident_layers();
    for (const TensorRef& tensor : source->tensors()) {
      CAPTURE(tensor.name);
      const auto* begin = reinterpret_cast<const std::byte*>(tensor.bytes.data());
      const auto* end = begin + tensor.bytes.size();
      bool inside = false;
      bool overlaps = false;
      for (const testing::PinnedRange& pin : pins) {
        inside |= pin.data <= begin && end <= pin.data + pin.bytes;
        overlaps |= begin < pin.data + pin.bytes && pin.data < end;
      }
      bool streamed = false;
      for (std::int64_t l = first_streamed; l < stage.end; ++l)
        streamed |= tensor.name.rfind(tensor_name(l, "."), 0) == 0;
      CHECK(inside == streamed);
      if (!streamed) CHECK_FALSE(overlaps);  // resident layers, the head, other stages
    }
  }
  for (const testing::PinnedRange& pin : pins)
    CHECK_FALSE(*pin.live);  // unpinned with the store

  // Everything resident: nothing to pin. The CPU backend pins nothing.
  backend.pins.clear();
  const WeightStore resident(backend, *source, stage, {});
  CHECK(backend.pins.empty());
  auto cpu = cpu_backend();
  CHECK(WeightStore(*cpu, *source, stage, {0, 0.5}).pinned_host_bytes() == 0);
}

TEST_CASE("SmolLM2 with half its weights resident decodes the same tokens") {
  const auto path = resolve_model_path("smollm2-135m-instruct");
  if (!path.ok()) {
    MESSAGE("smollm2-135m-instruct is not installed; skipped");
    return;
  }
  const auto source = open_model_source(*path).value();
  const Run full = run_model(*source, {});
  const Run half = run_model(*source, {0, 0.5});
  CHECK(half.streamed_layers > 0);
  CHECK(half.greedy == full.greedy);
  CHECK(half.peak_weight_bytes <= half.budget_bytes);
}
