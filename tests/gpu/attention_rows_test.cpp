// How the tensor-core attention splits a step's rows between its kernels: host code, so it
// runs on every machine whose build has the CUDA backend (no GPU needed).
#include <doctest/doctest.h>

#ifdef CONVEYOR_WITH_CUDA

#include <algorithm>
#include <set>
#include <vector>

#include "kernels/cuda/attention_rows.h"
#include "kernels/cuda/cuda_ops.h"

using namespace conveyor;

TEST_CASE("attention rows: decode rows alone, prompt rows in runs of at most eight") {
  StepLayout layout;
  // One decoding row, a prompt chunk of 19 rows, another decoding row, a chunk of 8 and one
  // of 2 (after earlier positions).
  for (const std::int64_t n : {1, 19, 1, 8, 2}) {
    layout.sequences.push_back({layout.num_tokens(), n, 100, {}});
    for (std::int64_t i = 0; i < n; ++i)
      layout.positions.push_back(static_cast<std::int32_t>(100 + i));
  }
  const cuda::AttentionRows rows = cuda::attention_rows(layout);
  CHECK(rows.decode_rows == std::vector<std::int32_t>{0, 20});
  CHECK(rows.prefill_groups == std::vector<std::int32_t>{1, 9, 17, 21, 29});
  // Every row is in exactly one block, and a run never leaves its sequence.
  std::multiset<std::int64_t> covered(rows.decode_rows.begin(), rows.decode_rows.end());
  for (const std::int32_t first : rows.prefill_groups) {
    const auto seq = std::find_if(layout.sequences.begin(), layout.sequences.end(),
                                  [&](const AttentionSequence& s) {
                                    return first >= s.first_row && first < s.first_row + s.num_new;
                                  });
    REQUIRE(seq != layout.sequences.end());
    const std::int64_t end =
        std::min<std::int64_t>(first + cuda::kPrefillGroupRows, seq->first_row + seq->num_new);
    for (std::int64_t r = first; r < end; ++r)
      covered.insert(r);
  }
  CHECK(covered.size() == static_cast<std::size_t>(layout.num_tokens()));
  CHECK(std::set<std::int64_t>(covered.begin(), covered.end()).size() == covered.size());
}

#endif  // CONVEYOR_WITH_CUDA
