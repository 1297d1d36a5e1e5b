// Processes for the cluster tests: the conveyor binary (or any program) started with
// posix_spawn, its stdout and stderr in a log file, signalled, awaited and read with a
// timeout on every wait, so a broken cluster fails a test instead of hanging it. The
// destructor SIGKILLs and reaps whatever is still running.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

extern char** environ;

namespace conveyor::testing {

using namespace std::chrono_literals;

// How often a wait looks again: short enough not to slow the tests down, long enough
// not to take a core from the processes under test.
inline constexpr std::chrono::milliseconds kPollInterval{25};

inline std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

class ChildProcess {
 public:
  // Runs argv[0] (looked up in PATH when it has no '/') with `argv`; stdin is
  // /dev/null, stdout and stderr go to `log`.
  ChildProcess(std::vector<std::string> argv, std::filesystem::path log)
      : argv_(std::move(argv)), log_(std::move(log)) {
    REQUIRE(!argv_.empty());
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    std::vector<char*> args;
    for (std::string& a : argv_)
      args.push_back(a.data());
    args.push_back(nullptr);
    const int rc = ::posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE_MESSAGE(rc == 0, "cannot start ", argv_[0], ": ", std::strerror(rc));
  }

  ~ChildProcess() {
    if (exit_status_) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::filesystem::path& log_path() const { return log_; }
  std::string log() const { return read_text_file(log_); }
  // The command line, for messages.
  std::string command() const {
    std::string line;
    for (const std::string& a : argv_)
      line += (line.empty() ? "" : " ") + a;
    return line;
  }

  void kill(int signal) {
    if (!exit_status_) ::kill(pid_, signal);
  }

  bool running() { return !poll_exit().has_value(); }

  // The exit code (128 + N for a process ended by signal N); nullopt when it is still
  // running after `timeout`.
  std::optional<int> wait_for_exit(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      if (std::optional<int> code = poll_exit()) return code;
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(kPollInterval);
    }
  }

  // Waits until the log holds `text`: false when the time runs out or the process
  // ends without having printed it.
  bool wait_for_log(std::string_view text, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      const bool ended = poll_exit().has_value();
      if (log().find(text) != std::string::npos) return true;
      if (ended || std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(kPollInterval);
    }
  }

 private:
  std::optional<int> poll_exit() {
    if (exit_status_) return exit_status_;
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r != pid_) return std::nullopt;
    exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return exit_status_;
  }

  std::vector<std::string> argv_;
  std::filesystem::path log_;
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
};

// A TCP port free on 127.0.0.1 right now: bound with port 0, read back, closed. Another
// process may take it before it is used, which in practice does not happen within the
// few milliseconds until the coordinator binds it.
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  ::close(fd);
  REQUIRE_MESSAGE(ok, "cannot find a free port: ", std::strerror(errno));
  return ntohs(address.sin_port);
}

// Waits until `condition()` holds; false when `timeout` passes first.
template <typename Condition>
bool wait_until(Condition condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(kPollInterval);
  }
  return true;
}

}  // namespace conveyor::testing
