#include "common/quant/weight_checks.h"

#include <cmath>
#include <string>

#include "common/status.h"

namespace conveyor::quant {

void check_matrix(std::span<const float> values, std::int64_t n, std::int64_t k, const char* what) {
  if (n <= 0 || k <= 0 ||
      static_cast<std::uint64_t>(n) * static_cast<std::uint64_t>(k) !=
          static_cast<std::uint64_t>(values.size())) {
    fail(ErrorCode::kInvalidArgument, std::string(what) + ": " + std::to_string(values.size()) +
                                          " values are not [" + std::to_string(n) + ", " +
                                          std::to_string(k) + "]");
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      fail(ErrorCode::kInvalidArgument,
           std::string(what) + ": value " + std::to_string(i) + " is not finite");
    }
  }
}

void check_channel_stats(std::span<const float> values, std::int64_t k, const char* what) {
  if (static_cast<std::uint64_t>(values.size()) != static_cast<std::uint64_t>(k)) {
    fail(ErrorCode::kInvalidArgument, std::string(what) + ": " + std::to_string(values.size()) +
                                          " channel values for " + std::to_string(k) +
                                          " input channels");
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i]) || values[i] < 0) {
      fail(ErrorCode::kInvalidArgument,
           std::string(what) + ": channel " + std::to_string(i) + " is negative or not finite");
    }
  }
}

}  // namespace conveyor::quant
