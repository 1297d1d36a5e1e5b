#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "common/model_registry.h"

using namespace conveyor;

TEST_CASE("aliases resolve inside CONVEYOR_HOME and paths pass through") {
  const auto home = std::filesystem::temp_directory_path() / "conveyor-registry-test";
  std::filesystem::remove_all(home);
  std::filesystem::create_directories(home / "models");
  ::setenv("CONVEYOR_HOME", home.c_str(), 1);

  CHECK(*resolve_model_path("/some/dir") == "/some/dir");

  auto missing = resolve_model_path("smollm2-135m-instruct");
  REQUIRE(!missing.ok());
  CHECK(missing.status().code() == ErrorCode::kNotFound);
  CHECK(missing.status().message().find("install-model.sh") != std::string::npos);

  const auto file = home / "models" / known_models().front().file_name;
  { std::ofstream(file) << "truncated"; }
  auto wrong_size = resolve_model_path("smollm2-135m-instruct");
  REQUIRE(!wrong_size.ok());
  CHECK(wrong_size.status().code() == ErrorCode::kMalformed);

  ::unsetenv("CONVEYOR_HOME");
  std::filesystem::remove_all(home);
}
