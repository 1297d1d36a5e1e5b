// Score buckets: a coarse histogram of scores on a log-probability scale, which
// turns "the best k tokens" and "the tokens holding mass p" into one linear pass plus
// a sort of a single bucket, instead of a selection over the whole vocabulary. With
// 150k tokens a partial sort costs milliseconds per decode step; the histogram pass
// costs a fraction of that.
//
// A token's bucket is its distance below the best score in nats, times
// kBucketsPerNat, capped at the last bucket. It never decreases as the score
// decreases, so bucket order agrees with ranks_before(), and only ties inside one
// bucket need a sort.
#pragma once

#include <cstddef>
#include <cstdint>

namespace conveyor {

inline constexpr std::uint32_t kBucketsPerNat = 32;
// 64 nats: a token that far below the best has probability under 1e-27 relative to
// it. The rest share the last bucket, which only a selection reaching into that
// tail (top_logprobs near the vocabulary size) needs to sort.
inline constexpr std::uint32_t kScoreBuckets = 64 * kBucketsPerNat;

// `gap` is the best score minus this score, in nats (>= 0; +inf for a masked token).
inline std::uint32_t score_bucket(float gap) {
  const float scaled = gap * static_cast<float>(kBucketsPerNat);
  return scaled < static_cast<float>(kScoreBuckets - 1) ? static_cast<std::uint32_t>(scaled)
                                                        : kScoreBuckets - 1;
}

}  // namespace conveyor
