// GPU tests are always built; they skip when no device is present.
#include <doctest/doctest.h>

#include "worker/platform/build_info.h"

TEST_CASE("build info reports compiled-in components") {
  const conveyor::BuildInfo info = conveyor::build_info();
  CHECK(!info.version.empty());
  CHECK(info.cuda_devices >= 0);
  if (info.with_ucx) CHECK(!info.ucx_version.empty());
  if (info.with_cuda) CHECK(!info.cuda_runtime.empty());
}

TEST_CASE("cuda device is usable when present" *
          doctest::skip(conveyor::build_info().cuda_devices == 0)) {
  CHECK(conveyor::build_info().cuda_devices > 0);
}
