// CRC-32C against published check values (the standard check string and the RFC 3720
// iSCSI vectors), and the equivalence of one pass and a pass in pieces.
#include "coordinator/journal/crc32c.h"

#include <doctest/doctest.h>

#include <vector>

namespace conveyor {
namespace {

TEST_CASE("crc32c matches the published check values") {
  CHECK(crc32c("123456789") == 0xE3069283u);
  CHECK(crc32c("") == 0u);
  CHECK(crc32c("a") == 0xC1D04330u);

  std::vector<std::uint8_t> zeros(32, 0x00);
  CHECK(crc32c(zeros) == 0x8A9136AAu);
  std::vector<std::uint8_t> ones(32, 0xFF);
  CHECK(crc32c(ones) == 0x62A8AB43u);
  std::vector<std::uint8_t> up(32);
  std::vector<std::uint8_t> down(32);
  for (std::size_t i = 0; i < 32; ++i) {
    up[i] = static_cast<std::uint8_t>(i);
    down[i] = static_cast<std::uint8_t>(31 - i);
  }
  CHECK(crc32c(up) == 0x46DD794Eu);
  CHECK(crc32c(down) == 0x113FDB5Cu);
}

TEST_CASE("crc32c over pieces equals crc32c over the whole, at every split") {
  std::vector<std::uint8_t> bytes(100);
  for (std::size_t i = 0; i < bytes.size(); ++i)
    bytes[i] = static_cast<std::uint8_t>(i * 37 + 11);
  const std::uint32_t whole = crc32c(bytes);
  const std::span<const std::uint8_t> all(bytes);
  for (std::size_t split = 0; split <= bytes.size(); ++split) {
    CHECK(crc32c_extend(crc32c(all.first(split)), all.subspan(split)) == whole);
  }
}

TEST_CASE("crc32c changes when a single bit flips") {
  std::vector<std::uint8_t> bytes(64, 0x5A);
  const std::uint32_t original = crc32c(bytes);
  for (std::size_t bit = 0; bit < bytes.size() * 8; ++bit) {
    bytes[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    CHECK(crc32c(bytes) != original);
    bytes[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
  }
}

}  // namespace
}  // namespace conveyor
