// What Backend::sample writes for a row it could not sample: negative, never a token.
// Plain constants, for the CUDA kernels (C++17) as for the host.
#pragma once

#include <cstdint>

namespace conveyor {

inline constexpr std::int32_t kSampleNothing = -1;     // every logit -inf or NaN
inline constexpr std::int32_t kSampleInfinite = -2;    // a +inf logit (a draw, not greedy)
inline constexpr std::int32_t kSampleBadHistory = -3;  // a history token outside the vocabulary

}  // namespace conveyor
