#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "common/config/size_parse.h"

using namespace conveyor;

namespace {

std::uint64_t size_of(const char* text) {
  Expected<std::uint64_t> size = parse_size(text);
  INFO(text, ": ", size.status().to_string());
  REQUIRE(size.ok());
  return *size;
}

std::int64_t count_of(const char* text) {
  Expected<std::int64_t> count = parse_count(text);
  INFO(text, ": ", count.status().to_string());
  REQUIRE(count.ok());
  return *count;
}

constexpr std::uint64_t kKiB = 1024;

}  // namespace

TEST_CASE("sizes: plain bytes and every unit") {
  CHECK(size_of("0") == 0);
  CHECK(size_of("1048576") == 1048576);
  CHECK(size_of("512B") == 512);
  CHECK(size_of(" 64 MiB ") == 64 * kKiB * kKiB);

  // A bare letter is binary; "B" after it asks for powers of 1000.
  CHECK(size_of("2k") == 2 * kKiB);
  CHECK(size_of("2K") == 2 * kKiB);
  CHECK(size_of("2KiB") == 2 * kKiB);
  CHECK(size_of("2KB") == 2000);
  CHECK(size_of("3M") == 3 * kKiB * kKiB);
  CHECK(size_of("3MiB") == 3 * kKiB * kKiB);
  CHECK(size_of("3MB") == 3000000);
  CHECK(size_of("4G") == 4 * kKiB * kKiB * kKiB);
  CHECK(size_of("4GiB") == 4 * kKiB * kKiB * kKiB);
  CHECK(size_of("4GB") == 4000000000);
  CHECK(size_of("5T") == 5 * kKiB * kKiB * kKiB * kKiB);
  CHECK(size_of("5TiB") == 5 * kKiB * kKiB * kKiB * kKiB);
  CHECK(size_of("5TB") == 5000000000000);
  // Units ignore case.
  CHECK(size_of("1gib") == kKiB * kKiB * kKiB);
  CHECK(size_of("1gb") == 1000000000);
}

TEST_CASE("sizes: fractions round down to whole bytes") {
  CHECK(size_of("1.5GiB") == 3 * kKiB * kKiB * kKiB / 2);
  CHECK(size_of("0.5K") == 512);
  CHECK(size_of("1.5KB") == 1500);
  CHECK(size_of("0.001KiB") == 1);  // 1.024 bytes
  CHECK(size_of("2.000000GB") == 2000000000);
}

TEST_CASE("sizes: the largest value and overflow") {
  CHECK(size_of("18446744073709551615") == UINT64_MAX);
  CHECK(size_of("16777215TiB") == 16777215ull << 40);
  CHECK(size_of("17592186044415.999999MiB") == UINT64_MAX - 1);  // 2^64 - 2^20 + 1048574

  for (const char* text : {"18446744073709551616", "16777216TiB", "99999999999999999999999",
                           "18446744073709551615.5KiB", "17592186044416MiB"}) {
    Expected<std::uint64_t> size = parse_size(text);
    INFO(text);
    REQUIRE(!size.ok());
    CHECK(size.status().code() == ErrorCode::kOutOfRange);
  }
}

TEST_CASE("sizes: garbage says what was expected") {
  for (const char* text : {"", " ", "abc", "-1", "+1", "1.", ".5G", "1.5", "1..5G", "1e9", "1 G B",
                           "1GiBs", "1Gi", "1 PB", "0x10", "1,5G", "1.0000001GiB", "GiB"}) {
    Expected<std::uint64_t> size = parse_size(text);
    INFO("'", text, "'");
    REQUIRE(!size.ok());
    CHECK(size.status().code() == ErrorCode::kInvalidArgument);
    CHECK(size.status().message().find("expected a size in bytes") != std::string::npos);
  }
  // Bytes are whole: a fraction needs a larger unit.
  CHECK(parse_size("1.5").status().message().find("needs a unit") != std::string::npos);
  CHECK(parse_size("1.5B").status().message().find("needs a unit") != std::string::npos);
  CHECK(parse_size("7 PB").status().message().find("got '7 PB'") != std::string::npos);
}

TEST_CASE("counts: plain and with k, M, G (powers of 1000)") {
  CHECK(count_of("0") == 0);
  CHECK(count_of("512") == 512);
  CHECK(count_of("1k") == 1000);
  CHECK(count_of("4K") == 4000);
  CHECK(count_of("2M") == 2000000);
  CHECK(count_of("3G") == 3000000000);
  CHECK(count_of("1.5k") == 1500);
  CHECK(count_of("0.25M") == 250000);
  CHECK(count_of(" 8 k ") == 8000);
  CHECK(count_of("9223372036854775807") == INT64_MAX);
}

TEST_CASE("counts: fractions that leave a part, overflow and garbage") {
  Expected<std::int64_t> partial = parse_count("1.0005k");
  REQUIRE(!partial.ok());
  CHECK(partial.status().code() == ErrorCode::kInvalidArgument);
  CHECK(partial.status().message().find("not a whole count") != std::string::npos);
  CHECK(!parse_count("1.5").ok());

  for (const char* text : {"9223372036854775808", "9223372036854776k", "99999999999999999999G"}) {
    INFO(text);
    CHECK(parse_count(text).status().code() == ErrorCode::kOutOfRange);
  }
  for (const char* text : {"", "-5", "k", "1KiB", "1KB", "1x", "ten", "1e3"}) {
    Expected<std::int64_t> count = parse_count(text);
    INFO("'", text, "'");
    REQUIRE(!count.ok());
    CHECK(count.status().code() == ErrorCode::kInvalidArgument);
    CHECK(count.status().message().find("expected a count") != std::string::npos);
  }
}
