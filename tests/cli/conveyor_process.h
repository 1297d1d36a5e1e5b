// Running the conveyor binary from a test as a user would, through the shell:
// its exit code and everything it printed.
#pragma once

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace conveyor::testing {

struct CommandOutput {
  int exit_code = -1;
  std::string out;  // stdout and stderr together
};

// The binary under test (CTest sets CONVEYOR_BINARY).
inline std::string conveyor_binary() {
  const char* binary = std::getenv("CONVEYOR_BINARY");
  REQUIRE_MESSAGE(binary != nullptr, "CONVEYOR_BINARY is set by CTest");
  return binary;
}

// Runs a shell command line.
inline CommandOutput run_shell(const std::string& command_line) {
  const std::string command = command_line + " 2>&1";
  CommandOutput result;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    result.out.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// `conveyor ARGS`.
inline CommandOutput run_conveyor(const std::string& args) {
  return run_shell(conveyor_binary() + " " + args);
}

}  // namespace conveyor::testing
