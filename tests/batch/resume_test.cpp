// scan_for_resume: finished ids from both files, repair of a cut-off last line, and
// refusal of files that are not batch output.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/batch/jsonl_appender.h"
#include "coordinator/batch/result_line.h"
#include "coordinator/batch/resume.h"
#include "tests/batch/batch_test_util.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

std::string result_line(const std::string& custom_id, const std::string& text = "ok") {
  BatchRequest request;
  request.custom_id = custom_id;
  ChoiceOutput out;
  out.text = text;
  out.tokens = {1, 2};
  return format_result_line(request, 3, std::span(&out, 1), {"m", 1},
                            [](std::int32_t) { return std::string("t"); });
}

std::string error_line(const std::string& custom_id, std::int64_t line_number = 4) {
  RequestError error;
  error.line_number = line_number;
  error.custom_id = custom_id;
  error.code = "invalid_json";
  error.message = "line 4: invalid JSON";
  return format_error_line(error);
}

ResumeState scan_ok(const std::filesystem::path& output, const std::filesystem::path& errors) {
  auto state = scan_for_resume(output, errors);
  if (!state.ok()) FAIL(state.status().to_string());
  return std::move(state).value();
}

}  // namespace

TEST_CASE("missing files are empty, and are not created") {
  TempDir dir;
  const ResumeState state = scan_ok(dir.file("out.jsonl"), dir.file("err.jsonl"));
  CHECK(state.finished.empty());
  CHECK(state.results == 0);
  CHECK(state.errors == 0);
  CHECK(state.repaired_bytes == 0);
  CHECK_FALSE(std::filesystem::exists(dir.file("out.jsonl")));
  CHECK_FALSE(std::filesystem::exists(dir.file("err.jsonl")));
}

TEST_CASE("ids in either file are finished; the files are left as they were") {
  TempDir dir;
  const std::string output = result_line("a") + result_line("b") + result_line("c");
  const std::string errors = error_line("line-4") + error_line("d");
  write_file(dir.file("out.jsonl"), output);
  write_file(dir.file("err.jsonl"), errors);
  const ResumeState state = scan_ok(dir.file("out.jsonl"), dir.file("err.jsonl"));
  CHECK(state.finished == std::unordered_set<std::string>{"a", "b", "c", "line-4", "d"});
  CHECK(state.results == 3);
  CHECK(state.errors == 2);
  CHECK(state.repaired_bytes == 0);
  CHECK(read_file(dir.file("out.jsonl")) == output);
  CHECK(read_file(dir.file("err.jsonl")) == errors);
}

TEST_CASE("an id seen twice counts once") {
  TempDir dir;
  write_file(dir.file("out.jsonl"), result_line("a") + result_line("a"));
  write_file(dir.file("err.jsonl"), error_line("a") + error_line("b"));
  const ResumeState state = scan_ok(dir.file("out.jsonl"), dir.file("err.jsonl"));
  CHECK(state.finished.size() == 2);
  CHECK(state.results == 1);
  CHECK(state.errors == 1);
}

TEST_CASE("empty files are fine") {
  TempDir dir;
  write_file(dir.file("out.jsonl"), "");
  write_file(dir.file("err.jsonl"), "");
  CHECK(scan_ok(dir.file("out.jsonl"), dir.file("err.jsonl")).finished.empty());
}

TEST_CASE("a cut-off last line is removed and its request is not finished") {
  TempDir dir;
  const std::string whole = result_line("a") + result_line("b");
  const std::string third = result_line("c");
  for (const std::size_t kept : {std::size_t{1}, third.size() / 2, third.size() - 1}) {
    CAPTURE(kept);
    write_file(dir.file("out.jsonl"), whole + third.substr(0, kept));
    const ResumeState state = scan_ok(dir.file("out.jsonl"), dir.file("err.jsonl"));
    CHECK(state.finished == std::unordered_set<std::string>{"a", "b"});
    CHECK(state.results == 2);
    CHECK(state.repaired_bytes == static_cast<std::int64_t>(kept));
    CHECK(read_file(dir.file("out.jsonl")) == whole);
    // Repaired once: a second scan finds nothing to do.
    CHECK(scan_ok(dir.file("out.jsonl"), dir.file("err.jsonl")).repaired_bytes == 0);
  }
}

TEST_CASE("the error file is repaired the same way, and the counts add up") {
  TempDir dir;
  const std::string output = result_line("a");
  const std::string errors = error_line("b");
  write_file(dir.file("out.jsonl"), output + result_line("z").substr(0, 30));
  write_file(dir.file("err.jsonl"), errors + error_line("y").substr(0, 12));
  const ResumeState state = scan_ok(dir.file("out.jsonl"), dir.file("err.jsonl"));
  CHECK(state.finished == std::unordered_set<std::string>{"a", "b"});
  CHECK(state.results == 1);
  CHECK(state.errors == 1);
  CHECK(state.repaired_bytes == 42);
  CHECK(read_file(dir.file("out.jsonl")) == output);
  CHECK(read_file(dir.file("err.jsonl")) == errors);
}

TEST_CASE("a file holding only a cut-off first line is emptied") {
  TempDir dir;
  write_file(dir.file("out.jsonl"), "{\"id\":\"batch_req_0");
  const ResumeState state = scan_ok(dir.file("out.jsonl"), dir.file("err.jsonl"));
  CHECK(state.finished.empty());
  CHECK(state.repaired_bytes == 18);
  CHECK(read_file(dir.file("out.jsonl")).empty());
}

TEST_CASE("a tail of NUL bytes, as a crash can leave, is removed too") {
  TempDir dir;
  const std::string output = result_line("a");
  write_file(dir.file("out.jsonl"), output + std::string(4096, '\0'));
  const ResumeState state = scan_ok(dir.file("out.jsonl"), dir.file("err.jsonl"));
  CHECK(state.repaired_bytes == 4096);
  CHECK(read_file(dir.file("out.jsonl")) == output);
}

TEST_CASE("a tail that cannot be the start of a line is refused, not cut") {
  TempDir dir;
  const std::string text = result_line("a") + "some notes";
  write_file(dir.file("out.jsonl"), text);
  auto state = scan_for_resume(dir.file("out.jsonl"), dir.file("err.jsonl"));
  REQUIRE_FALSE(state.ok());
  CHECK(state.status().code() == ErrorCode::kMalformed);
  CHECK(state.status().message().find(dir.file("out.jsonl").string() + " line 2") !=
        std::string::npos);
  CHECK(read_file(dir.file("out.jsonl")) == text);
}

TEST_CASE("a corrupt middle line is an error naming the file and line; nothing is cut") {
  TempDir dir;
  const std::string text =
      result_line("a") + "{\"custom_id\": \"b\", \"response\": \n" + result_line("c") + "{\"id";
  write_file(dir.file("err.jsonl"), text);
  auto state = scan_for_resume(dir.file("out.jsonl"), dir.file("err.jsonl"));
  REQUIRE_FALSE(state.ok());
  CHECK(state.status().code() == ErrorCode::kMalformed);
  const std::string& message = state.status().message();
  CAPTURE(message);
  CHECK(message.find(dir.file("err.jsonl").string() + " line 2 is not a batch output line") !=
        std::string::npos);
  CHECK(message.find("invalid JSON") != std::string::npos);
  CHECK(message.find("refusing to append") != std::string::npos);
  CHECK(read_file(dir.file("err.jsonl")) == text);
}

TEST_CASE("lines that are JSON but not output lines are refused") {
  const std::pair<std::string, std::string> cases[] = {
      {"[1, 2]", "not an object"},
      {"\"text\"", "not an object"},
      {R"({"response": null, "error": {}})", "no string custom_id"},
      {R"({"custom_id": 7, "response": null})", "no string custom_id"},
      {R"({"custom_id": null, "error": null})", "no string custom_id"},
      {R"({"body": {"custom_id": "x"}, "response": 1})", "no string custom_id"},
      {"", "invalid JSON"},
      {"   ", "invalid JSON"},
      // A batch input line: an input file given as the output by mistake.
      {R"({"custom_id": "x", "method": "POST", "url": "/v1/completions", "body": {}})",
       "neither response nor error"},
      {R"({"custom_id": "x", "body": {"response": 1}})", "neither response nor error"},
  };
  for (const auto& [line, why] : cases) {
    TempDir dir;
    write_file(dir.file("out.jsonl"), result_line("a") + line + "\n");
    auto state = scan_for_resume(dir.file("out.jsonl"), dir.file("err.jsonl"));
    CAPTURE(line);
    REQUIRE_FALSE(state.ok());
    CHECK(state.status().code() == ErrorCode::kMalformed);
    CHECK(state.status().message().find("line 2") != std::string::npos);
    CHECK(state.status().message().find(why) != std::string::npos);
  }
}

TEST_CASE("a foreign line is found in a file of any size") {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 3000; ++i)
    text += error_line("id-" + std::to_string(i));
  text += "plain text\n";
  write_file(dir.file("err.jsonl"), text);
  auto state = scan_for_resume(dir.file("out.jsonl"), dir.file("err.jsonl"));
  REQUIRE_FALSE(state.ok());
  CHECK(state.status().message().find("line 3001") != std::string::npos);
}

TEST_CASE("lines larger than the read block, whole or cut, are read correctly") {
  TempDir dir;
  // Lines of 3 MiB cross several 1 MiB read blocks.
  const std::string big_a = result_line("big-a", std::string(3 << 20, 'x'));
  const std::string small = result_line("small");
  const std::string big_c = result_line("big-c", std::string(3 << 20, 'y'));
  const std::string cut = result_line("big-d", std::string(2 << 20, 'z')).substr(0, (2 << 20) + 7);
  write_file(dir.file("out.jsonl"), big_a + small + big_c + cut);
  const ResumeState state = scan_ok(dir.file("out.jsonl"), dir.file("err.jsonl"));
  CHECK(state.finished == std::unordered_set<std::string>{"big-a", "small", "big-c"});
  CHECK(state.repaired_bytes == static_cast<std::int64_t>(cut.size()));
  CHECK(std::filesystem::file_size(dir.file("out.jsonl")) ==
        big_a.size() + small.size() + big_c.size());
}

TEST_CASE("a path that cannot be read is an I/O error naming it") {
  TempDir dir;
  std::filesystem::create_directory(dir.file("a-directory"));
  auto state = scan_for_resume(dir.file("a-directory"), dir.file("err.jsonl"));
  REQUIRE_FALSE(state.ok());
  CHECK(state.status().code() == ErrorCode::kIo);
  CHECK(state.status().message().find(dir.file("a-directory").string()) != std::string::npos);
}

TEST_CASE("after a kill mid-append, resume repairs the file and appending goes on") {
  TempDir dir;
  const auto path = dir.file("out.jsonl");
  // Whether the kill lands inside a write is up to timing (the cases above cut files
  // by hand for that); what must hold either way is checked below.
  const std::string payload(256 << 10, 'p');
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    auto appender = JsonlAppender::open(path);
    if (!appender.ok()) ::_exit(2);
    for (int i = 0;; ++i) {
      if (!appender->append(result_line("id-" + std::to_string(i), payload)).ok()) ::_exit(3);
    }
  }
  // Let it write a few lines, then kill it without warning.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    std::error_code ec;
    const std::uintmax_t size = std::filesystem::file_size(path, ec);
    if (!ec && size > (4u << 20)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ::kill(child, SIGKILL);
  int wait_status = 0;
  REQUIRE(::waitpid(child, &wait_status, 0) == child);
  CHECK(WIFSIGNALED(wait_status));

  const ResumeState state = scan_ok(path, dir.file("err.jsonl"));
  CHECK(state.results >= 4);
  // The finished ids are exactly the first `results` ones, in order.
  for (std::int64_t i = 0; i < state.results; ++i) {
    CHECK(state.finished.count("id-" + std::to_string(i)) == 1);
  }
  const std::string text = read_file(path);
  REQUIRE_FALSE(text.empty());
  CHECK(text.back() == '\n');

  auto appender = JsonlAppender::open(path);
  REQUIRE(appender.ok());
  CHECK(appender->append(result_line("after")).ok());
  const ResumeState again = scan_ok(path, dir.file("err.jsonl"));
  CHECK(again.repaired_bytes == 0);
  CHECK(again.results == state.results + 1);
}
