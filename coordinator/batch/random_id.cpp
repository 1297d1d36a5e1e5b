#include "coordinator/batch/random_id.h"

#include <cstdint>
#include <random>

namespace conveyor {

std::string random_hex(std::size_t digits) {
  // One generator per thread: no lock on the path that writes every output line.
  thread_local std::mt19937_64 generator = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text;
  text.reserve(digits);
  std::uint64_t bits = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    if (i % 16 == 0) bits = generator();
    text += kHex[bits & 0xF];
    bits >>= 4;
  }
  return text;
}

}  // namespace conveyor
