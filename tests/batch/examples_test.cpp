// examples/prompts.jsonl: every line parses except the ones meant to fail, and the
// file covers what examples/README.md says it does.
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "coordinator/batch/request_line.h"

using namespace conveyor;

namespace {

struct ParsedFile {
  std::vector<BatchRequest> requests;
  std::map<std::int64_t, RequestError> errors;  // by line number
  std::int64_t lines = 0;
};

ParsedFile parse_examples() {
  const std::string path = std::string(CONVEYOR_SOURCE_DIR) + "/examples/prompts.jsonl";
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path);
  ParsedFile file;
  std::string line;
  while (std::getline(in, line)) {
    ++file.lines;
    ParsedLine parsed = parse_request_line(line, file.lines, RequestLineLimits{});
    if (auto* request = std::get_if<BatchRequest>(&parsed)) {
      file.requests.push_back(std::move(*request));
    } else if (auto* error = std::get_if<RequestError>(&parsed)) {
      file.errors.emplace(file.lines, std::move(*error));
    } else {
      FAIL("line " << file.lines << " is blank");
    }
  }
  return file;
}

}  // namespace

TEST_CASE("examples/prompts.jsonl: exactly the intended lines fail, with the intended codes") {
  const ParsedFile file = parse_examples();
  CHECK(file.lines == 60);
  const std::map<std::int64_t, std::string> expected = {
      {12, request_error_code::kInvalidJson},
      {25, request_error_code::kMissingField},
      {47, request_error_code::kInvalidField},
      {57, request_error_code::kUnsupportedUrl},
  };
  REQUIRE(file.errors.size() == expected.size());
  for (const auto& [line, code] : expected) {
    CAPTURE(line);
    REQUIRE(file.errors.count(line) == 1);
    const RequestError& error = file.errors.at(line);
    CHECK(error.code == code);
    CHECK(error.message.rfind("line " + std::to_string(line) + ": ", 0) == 0);
  }
  CHECK(file.errors.at(12).custom_id == "line-12");
  CHECK(file.errors.at(25).custom_id == "bad-no-body");
  CHECK(file.errors.at(47).message.find("body.temperature") != std::string::npos);
  CHECK(file.errors.at(57).custom_id == "bad-url");
}

TEST_CASE("examples/prompts.jsonl: one duplicate custom_id, left for intake to report") {
  const ParsedFile file = parse_examples();
  std::unordered_map<std::string, std::int64_t> first_line;
  std::vector<std::int64_t> duplicate_lines;
  for (const BatchRequest& request : file.requests) {
    if (!first_line.emplace(request.custom_id, request.line_number).second) {
      duplicate_lines.push_back(request.line_number);
      CHECK(request.custom_id == "chat-001");
      CHECK(first_line.at(request.custom_id) == 1);
    }
  }
  CHECK(duplicate_lines == std::vector<std::int64_t>{38});
}

TEST_CASE("examples/prompts.jsonl: varied requests sized for a small model") {
  const ParsedFile file = parse_examples();
  CHECK(file.requests.size() >= 50);
  int chat = 0, completions = 0, system = 0, greedy = 0, seeded = 0, stops = 0, multi = 0,
      logprobs = 0, generated_ids = 0;
  for (const BatchRequest& request : file.requests) {
    CAPTURE(request.line_number);
    CHECK(request.sampling.max_tokens >= 16);
    CHECK(request.sampling.max_tokens <= 96);
    chat += request.endpoint == Endpoint::kChatCompletions;
    completions += request.endpoint == Endpoint::kCompletions;
    system += !request.messages.empty() && request.messages[0].role == "system";
    greedy += request.sampling.is_greedy();
    seeded += !request.sampling.is_greedy() && request.sampling.seed.has_value();
    stops += !request.sampling.stop_strings.empty();
    multi += request.n > 1;
    logprobs += request.sampling.logprobs;
    generated_ids += request.custom_id.rfind("request-", 0) == 0;
  }
  CHECK(chat >= 40);
  CHECK(completions >= 4);
  CHECK(system >= 3);
  CHECK(greedy >= 10);
  CHECK(seeded >= 10);
  CHECK(stops >= 3);
  CHECK(multi >= 2);
  CHECK(logprobs >= 3);
  CHECK(generated_ids == 2);
}
