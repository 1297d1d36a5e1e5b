// Sender and receiver in two processes. The child is this test binary started afresh
// (posix_spawn, so it builds its UCX objects from nothing rather than inheriting the
// parent's) running the skipped "ucx child" case, which sends to the address it is
// given and then closes, or dies without closing.
#ifdef CONVEYOR_WITH_UCX
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "tests/transport/activation_pattern.h"
#include "worker/transport/ucx_channel.h"

extern char** environ;

namespace conveyor {
namespace {

using namespace std::chrono_literals;
using testing::pattern_activations;
using testing::pattern_mismatch;

constexpr auto kWait = 20s;
constexpr std::uint64_t kChildMessages = 20;
std::size_t child_count(std::uint64_t step) {
  return 1 + step * 50000;
}

TEST_CASE("ucx child: send to CONVEYOR_UCX_CHILD_ADDRESS" * doctest::skip()) {
  const char* address = std::getenv("CONVEYOR_UCX_CHILD_ADDRESS");
  if (address == nullptr) return;  // only meaningful as the child of the test below
  const std::string mode = std::getenv("CONVEYOR_UCX_CHILD_MODE");
  auto sender = UcxActivationSender::connect(address, 10s);
  if (!sender.ok()) ::_exit(2);
  (*sender)->set_epoch(4);
  for (std::uint64_t step = 0; step < kChildMessages; ++step) {
    if (!(*sender)->send(pattern_activations(step, child_count(step))).ok()) ::_exit(3);
  }
  if (mode == "crash") ::raise(SIGKILL);
  (*sender)->close();
  ::_exit(0);
}

// Starts the child; its stdout (doctest's report) is discarded.
pid_t spawn_child(const std::string& address, const std::string& mode) {
  std::vector<std::string> env_text = {"CONVEYOR_UCX_CHILD_ADDRESS=" + address,
                                       "CONVEYOR_UCX_CHILD_MODE=" + mode};
  std::vector<char*> env;
  for (auto& e : env_text)
    env.push_back(e.data());
  for (char** e = environ; *e != nullptr; ++e)
    env.push_back(*e);
  env.push_back(nullptr);
  std::string exe = "/proc/self/exe";
  std::string no_skip = "--no-skip=true";
  std::string filter = "--test-case=ucx child: *";
  char* argv[] = {exe.data(), no_skip.data(), filter.data(), nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv, env.data());
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE(rc == 0);
  return pid;
}

// The child's wait status, or -1 when it had to be killed after kWait.
int wait_child(pid_t pid) {
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(5ms);
  }
  return status;
}

void receive_child_messages(UcxActivationReceiver& receiver) {
  for (std::uint64_t step = 0; step < kChildMessages; ++step) {
    auto got = receiver.receive_for(kWait);
    REQUIRE_MESSAGE(got.ok(), got.status().to_string());
    CHECK(pattern_mismatch(*got, step, child_count(step)) == "");
    CHECK(receiver.last_epoch() == 4);
  }
}

TEST_CASE("ucx: activations cross from one process to another") {
  auto receiver = UcxActivationReceiver::listen("127.0.0.1", 0);
  REQUIRE(receiver.ok());
  const pid_t child = spawn_child((*receiver)->address(), "close");
  receive_child_messages(**receiver);
  const int status = wait_child(child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  // It said goodbye: nothing more, in particular no failure.
  auto after = (*receiver)->receive_for(100ms);
  CHECK(after.status().code() == ErrorCode::kUnavailable);
  CHECK(after.status().message().find("lost") == std::string::npos);
}

TEST_CASE("ucx: a sender process that dies is reported after its last message") {
  auto receiver = UcxActivationReceiver::listen("127.0.0.1", 0);
  REQUIRE(receiver.ok());
  const pid_t child = spawn_child((*receiver)->address(), "crash");
  receive_child_messages(**receiver);
  const int status = wait_child(child);
  CHECK(WIFSIGNALED(status));
  auto lost = (*receiver)->receive_for(kWait);
  CHECK(lost.status().code() == ErrorCode::kUnavailable);
  CHECK(lost.status().message().find("lost") != std::string::npos);
}

}  // namespace
}  // namespace conveyor
#endif  // CONVEYOR_WITH_UCX
