#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "common/status.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/cpu/cpu_test_util.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

constexpr std::int64_t kHeads = 4;
constexpr std::int64_t kKvHeads = 2;
constexpr std::int64_t kHeadDim = 16;
constexpr std::int64_t kQWidth = kHeads * kHeadDim;
constexpr std::int64_t kKvDim = kKvHeads * kHeadDim;
constexpr std::int64_t kBlockSize = 4;

// One sequence's full K/V (every position) and the queries of its new tokens.
struct SequenceData {
  std::int64_t start = 0;  // cached positions before the new tokens
  std::int64_t num_new = 0;
  std::vector<float> k, v;  // f32 [start + num_new, kv_dim]
  std::vector<float> q;     // f32 [num_new, q_width]
};

SequenceData make_sequence(std::int64_t start, std::int64_t num_new, std::uint32_t seed) {
  SequenceData s;
  s.start = start;
  s.num_new = num_new;
  const auto total = static_cast<std::size_t>(start + num_new);
  s.k = random_floats(total * kKvDim, seed);
  s.v = random_floats(total * kKvDim, seed + 1);
  s.q = random_floats(static_cast<std::size_t>(num_new * kQWidth), seed + 2);
  return s;
}

// Dense softmax(q K^T / sqrt(d) + mask) V, in double, as written in the papers.
std::vector<float> dense_attention(const SequenceData& s, std::int64_t window) {
  std::vector<float> out(static_cast<std::size_t>(s.num_new * kQWidth));
  const double scale = 1.0 / std::sqrt(static_cast<double>(kHeadDim));
  for (std::int64_t i = 0; i < s.num_new; ++i) {
    const std::int64_t pos = s.start + i;
    for (std::int64_t h = 0; h < kHeads; ++h) {
      const std::int64_t g = h / (kHeads / kKvHeads);
      std::vector<double> w(static_cast<std::size_t>(pos + 1), 0.0);
      double max_score = -1e300;
      for (std::int64_t j = 0; j <= pos; ++j) {
        if (window > 0 && pos - j >= window) continue;
        double d = 0;
        for (std::int64_t c = 0; c < kHeadDim; ++c) {
          d += static_cast<double>(s.q[i * kQWidth + h * kHeadDim + c]) *
               s.k[j * kKvDim + g * kHeadDim + c];
        }
        w[j] = d * scale;
        max_score = std::max(max_score, w[j]);
      }
      double sum = 0;
      for (std::int64_t j = 0; j <= pos; ++j) {
        w[j] = (window > 0 && pos - j >= window) ? 0.0 : std::exp(w[j] - max_score);
        sum += w[j];
      }
      for (std::int64_t c = 0; c < kHeadDim; ++c) {
        double acc = 0;
        for (std::int64_t j = 0; j <= pos; ++j)
          acc += w[j] / sum * s.v[j * kKvDim + g * kHeadDim + c];
        out[i * kQWidth + h * kHeadDim + c] = static_cast<float>(acc);
      }
    }
  }
  return out;
}

// Stores every sequence's K/V into a paged cache with shuffled block tables and runs
// one attention call over all of them.
struct PagedRun {
  std::vector<float> out;  // f32 [total_new, q_width], sequences in order
};

PagedRun paged_attention(CpuBackend& backend, const std::vector<SequenceData>& seqs,
                         std::int64_t window, std::uint32_t shuffle_seed) {
  std::int64_t blocks_needed = 0;
  for (const auto& s : seqs)
    blocks_needed += (s.start + s.num_new + kBlockSize - 1) / kBlockSize;
  const std::int64_t num_blocks = blocks_needed + 3;  // some never used
  auto k_buf = backend.allocate(static_cast<std::size_t>(num_blocks * kBlockSize * kKvDim) * 4);
  auto v_buf = backend.allocate(k_buf->bytes());
  const KvLayerView layer{k_buf->floats(), v_buf->floats(), num_blocks, kBlockSize, kKvDim};

  std::vector<std::int32_t> free_blocks(static_cast<std::size_t>(num_blocks));
  std::iota(free_blocks.begin(), free_blocks.end(), 0);
  std::shuffle(free_blocks.begin(), free_blocks.end(), std::mt19937(shuffle_seed));

  std::vector<std::vector<std::int32_t>> tables(seqs.size());
  StepLayout layout;  // the new tokens of every sequence
  std::vector<float> q_all;
  std::size_t next_block = 0;
  for (std::size_t i = 0; i < seqs.size(); ++i) {
    const auto& s = seqs[i];
    const std::int64_t total = s.start + s.num_new;
    for (std::int64_t b = 0; b < (total + kBlockSize - 1) / kBlockSize; ++b) {
      tables[i].push_back(free_blocks[next_block++]);
    }
    // K/V of every position, cached and new, written by one step of their own.
    StepLayout store;
    for (std::int64_t p = 0; p < total; ++p) {
      const std::int64_t slot =
          tables[i][static_cast<std::size_t>(p / kBlockSize)] * kBlockSize + p % kBlockSize;
      store.positions.push_back(static_cast<std::int32_t>(p));
      store.slots.push_back(slot);
      if (p >= s.start) {
        layout.positions.push_back(static_cast<std::int32_t>(p));
        layout.slots.push_back(slot);
      }
    }
    backend.store_kv(s.k.data(), s.v.data(), *backend.prepare_step(std::move(store)), layer);
    layout.sequences.push_back({layout.num_tokens() - s.num_new, s.num_new, s.start, tables[i]});
    q_all.insert(q_all.end(), s.q.begin(), s.q.end());
  }
  PagedRun run;
  run.out.resize(q_all.size());
  const AttentionConfig config{kHeads, kKvHeads, kHeadDim,
                               1.0f / std::sqrt(static_cast<float>(kHeadDim)), window};
  backend.attention(q_all.data(), layer, *backend.prepare_step(std::move(layout)), config,
                    run.out.data());
  return run;
}

std::vector<SequenceData> mixed_batch() {
  // A prefill from scratch, a chunk after cached tokens, decodes at various depths.
  return {make_sequence(0, 23, 10), make_sequence(9, 7, 20), make_sequence(30, 1, 30),
          make_sequence(0, 1, 40),  make_sequence(4, 1, 50), make_sequence(0, 40, 60)};
}

}  // namespace

TEST_CASE("paged attention matches dense attention, full and sliding window") {
  CpuBackend backend(cpu_options(3));
  const auto seqs = mixed_batch();
  for (std::int64_t window : {0, 1, 5, 8}) {
    CAPTURE(window);
    const auto run = paged_attention(backend, seqs, window, 1);
    std::int64_t row = 0;
    for (const auto& s : seqs) {
      const auto expected = dense_attention(s, window);
      CHECK(max_abs_diff(run.out.data() + row * kQWidth, expected.data(), expected.size()) < 1e-5f);
      row += s.num_new;
    }
  }
}

TEST_CASE("attention results do not depend on block placement, batching or threads") {
  const auto seqs = mixed_batch();
  CpuBackend single(cpu_options(1));
  CpuBackend multi(cpu_options(4));
  const auto a = paged_attention(single, seqs, 0, 1);
  const auto b = paged_attention(multi, seqs, 0, 2);  // other block placement too
  CHECK(bitwise_equal(a.out.data(), b.out.data(), a.out.size()));
  std::int64_t row = 0;
  for (const auto& s : seqs) {
    const auto alone = paged_attention(multi, {s}, 0, 3);
    CHECK(bitwise_equal(alone.out.data(), a.out.data() + row * kQWidth, alone.out.size()));
    row += s.num_new;
  }
}

TEST_CASE("attention refuses block tables that do not cover the sequence") {
  CpuBackend backend(cpu_options(1));
  auto k_buf = backend.allocate(4 * kBlockSize * kKvDim * 4);
  auto v_buf = backend.allocate(k_buf->bytes());
  const KvLayerView layer{k_buf->floats(), v_buf->floats(), 4, kBlockSize, kKvDim};
  const AttentionConfig config{kHeads, kKvHeads, kHeadDim, 0.25f, 0};
  std::vector<float> q(kQWidth), out(kQWidth);
  auto one_token = [&](std::int64_t position, std::span<const std::int32_t> table) {
    StepLayout layout;
    layout.positions = {static_cast<std::int32_t>(position)};
    layout.slots = {0};
    layout.sequences = {{0, 1, position, table}};
    return backend.prepare_step(std::move(layout));
  };
  const std::vector<std::int32_t> short_table{0};
  CHECK_THROWS_AS(
      backend.attention(q.data(), layer, *one_token(kBlockSize, short_table), config, out.data()),
      Error);
  const std::vector<std::int32_t> bad_block{7};
  CHECK_THROWS_AS(backend.attention(q.data(), layer, *one_token(0, bad_block), config, out.data()),
                  Error);
  const auto bad_slot = positions_step(backend, {4 * kBlockSize});
  CHECK_THROWS_AS(backend.store_kv(q.data(), q.data(), *bad_slot, layer), Error);
}

TEST_CASE("prepare_step refuses inconsistent layouts") {
  CpuBackend backend(cpu_options(1));
  const std::vector<std::int32_t> table{0};
  StepLayout ok;
  ok.positions = {3, 4};
  ok.slots = {3, 4};
  ok.sequences = {{0, 2, 3, table}};
  ok.logit_rows = {1};
  CHECK_NOTHROW(backend.prepare_step(ok));
  StepLayout wrong_positions = ok;
  wrong_positions.positions = {3, 5};
  CHECK_THROWS_AS(backend.prepare_step(wrong_positions), Error);
  StepLayout too_many_rows = ok;
  too_many_rows.sequences = {{1, 2, 3, table}};
  CHECK_THROWS_AS(backend.prepare_step(too_many_rows), Error);
  StepLayout bad_logits = ok;
  bad_logits.logit_rows = {2};
  CHECK_THROWS_AS(backend.prepare_step(bad_logits), Error);
  StepLayout short_slots = ok;
  short_slots.slots = {3};
  CHECK_THROWS_AS(backend.prepare_step(short_slots), Error);
}
