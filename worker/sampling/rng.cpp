#include "worker/sampling/rng.h"

#include <random>

namespace conveyor {
namespace {

constexpr std::uint64_t kGoldenGamma = 0x9E3779B97F4A7C15ull;

// The SplitMix64 finaliser: a bijection on 64 bits with full avalanche.
constexpr std::uint64_t mix64(std::uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

Rng Rng::for_request(std::optional<std::uint64_t> seed) {
  if (seed) return Rng(*seed);
  std::random_device device;
  const std::uint64_t high = device();
  const std::uint64_t low = device();
  return Rng((high << 32) ^ low);
}

// SplitMix64's n-th output is mix64(state + (n + 1) * gamma), which is already
// counter-based. The seed is mixed first so that seeds differing by a multiple of
// gamma do not produce shifted copies of one stream.
std::uint64_t Rng::bits_at(std::uint64_t seed, std::uint64_t step) {
  return mix64(mix64(seed) + (step + 1) * kGoldenGamma);
}

double Rng::uniform_at(std::uint64_t seed, std::uint64_t step) {
  // The top 53 bits fill a double's mantissa exactly: uniform on a 2^-53 grid in [0, 1).
  return static_cast<double>(bits_at(seed, step) >> 11) * 0x1.0p-53;
}

}  // namespace conveyor
