#include "common/config/device_budget.h"

#include <charconv>
#include <cmath>

#include "common/config/size_parse.h"

namespace conveyor {

Expected<DeviceBudget> parse_device_budget(std::string_view text) {
  if (!text.empty() && text.back() == '%') {
    const std::string_view digits = text.substr(0, text.size() - 1);
    double percent = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), percent);
    if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty() ||
        !std::isfinite(percent) || percent <= 0 || percent > 100) {
      return Status(ErrorCode::kInvalidArgument,
                    "expected a share of the model in (0%, 100%], got '" + std::string(text) + "'");
    }
    DeviceBudget budget;
    budget.fraction = percent / 100;
    return budget;
  }
  Expected<std::uint64_t> bytes = parse_size(text);
  if (!bytes.ok()) {
    return Status(bytes.status().code(),
                  bytes.status().message() + " or a share of the model such as 50%");
  }
  DeviceBudget budget;
  budget.bytes = *bytes;
  return budget;
}

std::string device_budget_string(const DeviceBudget& budget) {
  if (budget.fraction > 0) {
    char text[32];
    const auto [end, ec] = std::to_chars(text, text + sizeof(text), budget.fraction * 100);
    return ec == std::errc() ? std::string(text, end) + "%" : "?%";
  }
  constexpr std::uint64_t kMiB = 1 << 20;
  if (budget.bytes != 0 && budget.bytes % kMiB == 0)
    return std::to_string(budget.bytes / kMiB) + "MiB";
  return std::to_string(budget.bytes);
}

}  // namespace conveyor
