#include <doctest/doctest.h>

#include "common/dtype.h"
#include "common/status.h"

using namespace conveyor;

TEST_CASE("Expected carries a value or a status") {
  Expected<int> good = 3;
  CHECK(good.ok());
  CHECK(*good == 3);
  Expected<int> bad = Status(ErrorCode::kMalformed, "bad header");
  CHECK(!bad.ok());
  CHECK(bad.status().code() == ErrorCode::kMalformed);
  CHECK(bad.status().to_string() == "malformed: bad header");
  CHECK_THROWS_AS(bad.value(), Error);
}

TEST_CASE("to_expected converts exceptions at the boundary") {
  auto r = to_expected([]() -> int { fail(ErrorCode::kOutOfRange, "too big"); });
  REQUIRE(!r.ok());
  CHECK(r.status().code() == ErrorCode::kOutOfRange);
}

TEST_CASE("dtype sizes follow the GGUF block layouts and refuse overflow") {
  CHECK(dtype_bytes(DType::kF32, 10) == 40u);
  CHECK(dtype_bytes(DType::kQ4_K, 512) == 288u);
  CHECK(dtype_bytes(DType::kQ6_K, 256) == 210u);
  CHECK(!dtype_bytes(DType::kQ8_0, 33).has_value());    // not whole blocks
  CHECK(!dtype_bytes(DType::kF32, ~0ull).has_value());  // overflow
  CHECK(dtype_from_name("q4_1") == DType::kQ4_1);
}
