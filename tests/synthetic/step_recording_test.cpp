// Decode steps padded for recording (worker/step_recording.h, LlamaModel's recorded
// steps): the padding's shape, and a model on a backend that records gives the tokens and
// logits of one that does not, the padding rows storing nothing.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>

#include "common/status.h"
#include "common/synthetic/random_model_source.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/greedy_decode.h"
#include "tests/recording_backend.h"
#include "worker/llama_model.h"
#include "worker/step_recording.h"

using namespace conveyor;

TEST_CASE("recorded decode steps round their rows up to a multiple of eight, up to a limit") {
  CHECK(recorded_rows(1) == 8);
  CHECK(recorded_rows(8) == 8);
  CHECK(recorded_rows(9) == 16);
  CHECK(recorded_rows(513) == 520);
  CHECK(recorded_rows(kMaxRecordedRows) == kMaxRecordedRows);
  CHECK(recorded_rows(kMaxRecordedRows + 1) == 0);
  CHECK(recorded_rows(0) == 0);
}

TEST_CASE("padding rows take token 0 at position 0, store nothing and read a real block") {
  const std::vector<std::int32_t> table_a{7, 9};
  const std::vector<std::int32_t> table_b{3};
  StepLayout layout;
  layout.tokens = {11, 12};
  layout.positions = {20, 4};
  layout.slots = {9 * 16 + 4, 3 * 16 + 4};
  layout.sequences = {{0, 1, 20, table_a}, {1, 1, 4, table_b}};
  layout.logit_rows = {0, 1};
  pad_for_recording(layout, 8);
  CHECK(layout.recorded_rows == 8);
  REQUIRE(layout.num_tokens() == 8);
  REQUIRE(layout.sequences.size() == 8);
  CHECK(layout.logit_rows == std::vector<std::int64_t>{0, 1});
  for (std::size_t row = 2; row < 8; ++row) {
    CAPTURE(row);
    CHECK(layout.tokens[row] == 0);
    CHECK(layout.positions[row] == 0);
    CHECK(layout.slots[row] == kNoSlot);
    const AttentionSequence& s = layout.sequences[row];
    CHECK(s.first_row == static_cast<std::int64_t>(row));
    CHECK(s.num_new == 1);
    CHECK(s.start_position == 0);
    REQUIRE(s.block_table.size() == 1);
    CHECK(s.block_table[0] == 7);
  }
  // Only decode steps, and never smaller.
  StepLayout prefill;
  prefill.tokens = {1, 2};
  prefill.positions = {0, 1};
  prefill.slots = {0, 1};
  prefill.sequences = {{0, 2, 0, table_b}};
  CHECK_THROWS_AS(pad_for_recording(prefill, 8), Error);
  CHECK_THROWS_AS(pad_for_recording(layout, 4), Error);
}

namespace {

// Four sequences: a prefill, then ten decode steps, sequence 2's logits to the host and
// the others' greedy tokens on the backend.
testing::DecodeRun decode(Backend& backend, const ModelSource& source) {
  const ModelSpec& spec = source.spec();
  KvCache cache(backend, {spec.num_layers, 16, 16, spec.kv_dim()});
  LlamaModel model(backend, ModelWeights::load(backend, source, LayerRange::all(spec)), cache);
  const std::vector<std::vector<std::int32_t>> tables{{0, 1}, {2, 3}, {4, 5}, {6, 7}};
  return testing::greedy_decode(model, {{5, 9, 14}, {3}, {8, 8, 1, 2}, {40, 41}},
                                {tables.begin(), tables.end()}, 10, 2,
                                [](int) { return std::size_t{4}; });
}

std::unique_ptr<ModelSource> recording_test_model() {
  RandomModelOptions options;
  options.seed = 3;
  options.max_positions = 256;
  options.threads = 2;
  return make_random_model({"recording-test", 64, 2, 4, 2, 128, 300, false, 10000}, options);
}

}  // namespace

TEST_CASE("a model on a recording backend pads its decode steps and gives the same outputs") {
  const auto source = recording_test_model();
  testing::ForwardingBackend plain;
  const testing::DecodeRun expected = decode(plain, *source);
  testing::RecordingBackend recording;
  const testing::DecodeRun got = decode(recording, *source);
  CHECK(got.tokens == expected.tokens);
  REQUIRE(got.logits.size() == expected.logits.size());
  float worst = 0;
  for (std::size_t i = 0; i < got.logits.size(); ++i)
    worst = std::max(worst, std::abs(got.logits[i] - expected.logits[i]));
  CHECK(worst < 1e-4f);
  // The prefill as it is; the ten decode steps padded to eight rows; the first of them
  // run as it is, the others recorded.
  REQUIRE(recording.layouts.size() == 11);
  CHECK(recording.layouts[0].recorded_rows == 0);
  for (std::size_t i = 1; i < 11; ++i) {
    CHECK(recording.layouts[i].recorded_rows == 8);
    CHECK(recording.layouts[i].num_tokens() == 8);
  }
  CHECK(recording.recordings == 9);
}

TEST_CASE("a size whose recordings keep failing runs unrecorded after three attempts") {
  const auto source = recording_test_model();
  testing::ForwardingBackend plain;
  const testing::DecodeRun expected = decode(plain, *source);
  testing::RecordingBackend failing;
  failing.keep = false;
  const testing::DecodeRun got = decode(failing, *source);
  // A failed recording ran nothing: the step ran as it is, with the same tokens.
  CHECK(got.tokens == expected.tokens);
  CHECK(failing.recordings == 0);
  CHECK(failing.attempts == 3);
}
