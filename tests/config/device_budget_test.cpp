// weights.device_budget and --weight-device-budget: a size or a share of the model.
#include <doctest/doctest.h>

#include "common/config/device_budget.h"
#include "common/config/run_config.h"

using namespace conveyor;

TEST_CASE("a device budget is a size, a share of the model, or 0 for none") {
  CHECK(parse_device_budget("0").value() == DeviceBudget{});
  CHECK(parse_device_budget("512MiB").value() == DeviceBudget{512ull << 20, 0});
  CHECK(parse_device_budget("1GB").value() == DeviceBudget{1000000000ull, 0});
  CHECK(parse_device_budget("50%").value() == DeviceBudget{0, 0.5});
  CHECK(parse_device_budget("100%").value() == DeviceBudget{0, 1.0});
  CHECK(parse_device_budget("12.5%").value() == DeviceBudget{0, 0.125});
  CHECK(device_budget_string(DeviceBudget{0, 0.25}) == "25%");
  CHECK(device_budget_string(DeviceBudget{4096, 0}) == "4096");
  CHECK(device_budget_string(DeviceBudget{136ull << 20, 0}) == "136MiB");
}

TEST_CASE("a device budget refuses shares outside (0%, 100%] and text that is no size") {
  for (const char* bad : {"0%", "-5%", "150%", "%", "half", "50 %", "nan%", "12MiBs"}) {
    CAPTURE(bad);
    const auto parsed = parse_device_budget(bad);
    REQUIRE(!parsed.ok());
    CHECK(parsed.status().code() == ErrorCode::kInvalidArgument);
  }
}

TEST_CASE("weights.device_budget in a config file") {
  const auto share = parse_run_config("weights:\n  device_budget: 25%\n", "test.yaml");
  REQUIRE(share.ok());
  CHECK(share->weights.device_budget == DeviceBudget{0, 0.25});
  const auto size = parse_run_config("weights: {device_budget: 64MiB}\n", "test.yaml");
  REQUIRE(size.ok());
  CHECK(size->weights.device_budget == DeviceBudget{64ull << 20, 0});
  const auto bad = parse_run_config("weights:\n  device_budget: 200%\n", "test.yaml");
  REQUIRE(!bad.ok());
  CHECK(bad.status().message().find("test.yaml:2") != std::string::npos);
  CHECK(bad.status().message().find("weights.device_budget") != std::string::npos);
  CHECK(!parse_run_config("weights: {budget: 1}\n", "test.yaml").ok());
}
