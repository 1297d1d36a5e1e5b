// The cuSPARSELt probe and the one note that 2:4 sparse weights run dense on the CUDA
// backend. Neither needs a device; built with the CUDA backend only.
#include <doctest/doctest.h>

#ifdef CONVEYOR_WITH_CUDA

#include <string>

#include "common/log/log.h"
#include "kernels/cuda/cusparselt_probe.h"

using namespace conveyor;

TEST_CASE("the fallback to dense 2:4 weights is said at most once, naming cuSPARSELt") {
  const bool available = cuda::cusparselt_available();
  CHECK(cuda::cusparselt_available() == available);  // probed once, the same answer
  const std::string expected = available
                                   ? "2:4 sparse weights: cuSPARSELt found but not used yet"
                                   : "2:4 sparse weights: cuSPARSELt not found, running them dense";
  CHECK(cuda::sparse24_fallback_note().find(expected) == 0);
  std::string text;
  log::configure({log::Format::kText, log::Level::kInfo, {}});
  log::set_writer([&text](std::string_view line) { text.append(line); });
  for (int i = 0; i < 3; ++i)
    cuda::report_sparse24_fallback();
  log::set_writer(nullptr);
  log::configure(log::LogConfig{});
  // Once a process: an earlier case (a 2:4 weight uploaded on a GPU) may have said it.
  CHECK(text.find(expected) == text.rfind(expected));
  CHECK(text.find("sparse weights") == text.rfind("sparse weights"));
}

#endif
