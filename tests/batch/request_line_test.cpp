// The envelope of a batch input line: size, UTF-8, JSON, shape, custom_id, method and
// url, and the convenience rows. Body fields are in request_body_test.cpp.
#include <doctest/doctest.h>

#include <string>

#include "tests/batch/batch_test_util.h"

using namespace conveyor;
using namespace conveyor::testing;
namespace code = request_error_code;

namespace {

const std::string kChatRow =
    R"({"custom_id": "req-1", "method": "POST", "url": "/v1/chat/completions", )"
    R"("body": {"model": "smollm2", "messages": [{"role": "user", "content": "Hi"}], )"
    R"("max_tokens": 20}})";

// An OpenAI chat row whose body has `extra` spliced in after the messages.
std::string chat_row(const std::string& extra) {
  return R"({"custom_id": "req-1", "method": "POST", "url": "/v1/chat/completions", )"
         R"("body": {"messages": [{"role": "user", "content": "Hi"}])" +
         extra + "}}";
}

}  // namespace

TEST_CASE("an OpenAI chat row becomes a chat request") {
  const BatchRequest request = parse_ok(kChatRow, 3);
  CHECK(request.line_number == 3);
  CHECK(request.custom_id == "req-1");
  CHECK(request.endpoint == Endpoint::kChatCompletions);
  CHECK(request.model == "smollm2");
  REQUIRE(request.messages.size() == 1);
  CHECK(request.messages[0].role == "user");
  CHECK(request.messages[0].content == "Hi");
  CHECK(request.sampling.max_tokens == 20);
  CHECK(request.n == 1);
  CHECK(request.prompt.empty());
  CHECK_FALSE(request.prompt_ids.has_value());
}

TEST_CASE("an OpenAI completions row becomes a completions request") {
  const BatchRequest request =
      parse_ok(R"({"custom_id": "c", "method": "POST", "url": "/v1/completions", )"
               R"("body": {"prompt": "Once upon a time", "max_tokens": 8}})");
  CHECK(request.endpoint == Endpoint::kCompletions);
  CHECK(request.prompt == "Once upon a time");
  CHECK(request.messages.empty());
  CHECK_FALSE(request.model.has_value());
}

TEST_CASE("empty and whitespace-only lines are blank, not requests or errors") {
  for (const std::string line : {"", " ", "\t", "\r", "  \t \r"}) {
    const ParsedLine parsed = parse_request_line(line, 9, {});
    REQUIRE(std::holds_alternative<BlankLine>(parsed));
    CHECK(std::get<BlankLine>(parsed).line_number == 9);
  }
}

TEST_CASE("a trailing carriage return (CRLF files) is whitespace") {
  CHECK(parse_ok(kChatRow + "\r").custom_id == "req-1");
}

TEST_CASE("a line longer than max_line_bytes is refused before parsing") {
  RequestLineLimits limits;
  limits.max_line_bytes = kChatRow.size();
  parse_ok(kChatRow, 1, limits);  // exactly at the limit
  limits.max_line_bytes = kChatRow.size() - 1;
  const RequestError error = parse_error(kChatRow, 4, limits);
  CHECK(error.code == code::kLineTooLong);
  CHECK(error.custom_id == "line-4");  // not parsed, so its custom_id is unknown
  CHECK(error.line_number == 4);
  CHECK(error.message.rfind("line 4: ", 0) == 0);
  CHECK(error.message.find(std::to_string(kChatRow.size())) != std::string::npos);

  // Garbage that long is refused for its length, not its content.
  limits.max_line_bytes = 16;
  CHECK(parse_error(std::string(17, '\xff'), 1, limits).code == code::kLineTooLong);
}

TEST_CASE("invalid UTF-8 is refused with the byte offset of the first bad byte") {
  const std::string prefix = R"({"prompt": ")";
  const std::string bad_sequences[] = {
      "\xff",              // never valid
      "\x80",              // a stray continuation byte
      "\xC0\xAF",          // overlong '/'
      "\xED\xA0\x80",      // a UTF-16 surrogate
      "\xF4\x90\x80\x80",  // past U+10FFFF
      "\xE2\x82",          // cut short before the closing quote
  };
  for (const std::string& bad : bad_sequences) {
    const std::string line = prefix + "ok \xC3\xA9 " + bad + "\"}";
    const RequestError error = parse_error(line, 2);
    CAPTURE(error.message);
    CHECK(error.code == code::kInvalidUtf8);
    CHECK(error.custom_id == "line-2");
    const std::size_t offset = prefix.size() + 6;  // "ok é " is 6 bytes
    CHECK(error.message == "line 2: invalid UTF-8 at byte offset " + std::to_string(offset));
  }
  // Valid multi-byte text of every length passes.
  const BatchRequest request =
      parse_ok("{\"prompt\": \"caf\\u00e9 \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"}");
  CHECK(request.prompt == "caf\xC3\xA9 \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
}

TEST_CASE("text that is not JSON is invalid_json, with where the parser stopped") {
  for (const std::string line :
       {"{", "not json", R"({"prompt": "x"} trailing)", R"({"prompt": "x",})", R"({'prompt': 'x'})",
        R"({"prompt": "\ud800"})"}) {
    const RequestError error = parse_error(line, 5);
    CAPTURE(line);
    CAPTURE(error.message);
    CHECK(error.code == code::kInvalidJson);
    CHECK(error.custom_id == "line-5");
    CHECK(error.message.rfind("line 5: invalid JSON at byte ", 0) == 0);
    CHECK(error.message.find("[json.exception") == std::string::npos);
  }
}

TEST_CASE("a number beyond double's range is invalid_json, not an escaped exception") {
  for (const std::string line :
       {R"({"prompt": [1e999]})", R"({"temperature": -1E400, "prompt": "x"})"}) {
    const RequestError error = parse_error(line, 3);
    CAPTURE(line);
    CAPTURE(error.message);
    CHECK(error.code == code::kInvalidJson);
    CHECK(error.custom_id == "line-3");
    CHECK(error.message.rfind("line 3: invalid JSON: number overflow", 0) == 0);
    CHECK(error.message.find("[json.exception") == std::string::npos);
  }
}

TEST_CASE("the parser's message is cut when it quotes a long token") {
  const std::string line = R"({"prompt": ")" + std::string(5000, 'a') + "\\q\"}";
  const RequestError error = parse_error(line);
  CHECK(error.code == code::kInvalidJson);
  CHECK(error.message.size() < 300);
}

TEST_CASE("JSON that is not an object is invalid_json") {
  for (const std::string line : {"[1, 2]", "\"text\"", "42", "null", "true"}) {
    const RequestError error = parse_error(line, 6);
    CAPTURE(line);
    CHECK(error.code == code::kInvalidJson);
    CHECK(error.message.find("must be a JSON object") != std::string::npos);
  }
}

TEST_CASE("nesting deeper than max_depth is refused before parsing") {
  // 64 levels in all is accepted (an ignored field holds the depth)...
  const std::string deep_ok = chat_row(R"(, "x": )" + std::string(62, '[') + std::string(62, ']'));
  parse_ok(deep_ok);
  // ... 65 is not.
  const std::string too_deep = chat_row(R"(, "x": )" + std::string(63, '[') + std::string(63, ']'));
  const RequestError error = parse_error(too_deep, 8);
  CHECK(error.code == code::kInvalidJson);
  CHECK(error.message == "line 8: JSON nests deeper than 64 levels");

  // Brackets inside strings (escaped quotes included) do not count.
  const BatchRequest request =
      parse_ok(R"({"prompt": ")" + std::string(200, '[') + R"(\"{{{{")" + R"(, "max_tokens": 4})");
  CHECK(request.prompt == std::string(200, '[') + "\"{{{{");

  // A hostile line of a million brackets costs a scan, not the stack.
  RequestLineLimits limits;
  limits.max_line_bytes = 2'000'000;
  CHECK(parse_error(std::string(1'000'000, '['), 1, limits).code == code::kInvalidJson);
  CHECK(parse_error(std::string(1'000'000, '{'), 1, limits).code == code::kInvalidJson);
}

TEST_CASE("custom_id must be a non-empty string of bounded length") {
  expect_refused(R"({"method": "POST", "url": "/v1/completions", "body": {"prompt": "x"}})",
                 code::kMissingField, "missing custom_id");
  expect_refused(
      R"({"custom_id": null, "method": "POST", "url": "/v1/completions", "body": {"prompt": "x"}})",
      code::kMissingField, "missing custom_id");
  expect_refused(
      R"({"custom_id": 42, "method": "POST", "url": "/v1/completions", "body": {"prompt": "x"}})",
      code::kInvalidField, "custom_id must be a string, got 42");
  expect_refused(
      R"({"custom_id": "", "method": "POST", "url": "/v1/completions", "body": {"prompt": "x"}})",
      code::kInvalidField, "custom_id is empty");

  const auto row_with_id = [](const std::string& id) {
    return R"({"custom_id": ")" + id +
           R"(", "method": "POST", "url": "/v1/completions", "body": {"prompt": "x"}})";
  };
  CHECK(parse_ok(row_with_id(std::string(512, 'a'))).custom_id.size() == 512);
  const RequestError error = parse_error(row_with_id(std::string(513, 'a')), 7);
  CHECK(error.code == code::kInvalidField);
  CHECK(error.custom_id == "line-7");  // the id itself is unusable
  CHECK(error.message.find("custom_id is 513 bytes long") != std::string::npos);

  RequestLineLimits limits;
  limits.max_custom_id_bytes = 4;
  CHECK(parse_error(row_with_id("abcde"), 1, limits).code == code::kInvalidField);
}

TEST_CASE("errors after the custom_id was read carry it") {
  const RequestError error = parse_error(chat_row(R"(, "temperature": "hot")"), 7);
  CHECK(error.custom_id == "req-1");
  CHECK(error.message == "line 7: body.temperature must be a number, got string");
}

TEST_CASE("method must be POST") {
  expect_refused(R"({"custom_id": "a", "url": "/v1/completions", "body": {"prompt": "x"}})",
                 code::kMissingField, "missing method");
  expect_refused(
      R"({"custom_id": "a", "method": "GET", "url": "/v1/completions", "body": {"prompt": "x"}})",
      code::kInvalidField, R"(method is "GET")");
  expect_refused(
      R"({"custom_id": "a", "method": 1, "url": "/v1/completions", "body": {"prompt": "x"}})",
      code::kInvalidField, "method must be a string, got 1");
}

TEST_CASE("only the chat and completions urls are supported") {
  for (const std::string url :
       {"/v1/embeddings", "/v1/responses", "/v1/chat/completions/", "v1/completions", ""}) {
    const std::string line =
        R"({"custom_id": "e1", "method": "POST", "url": ")" + url + R"(", "body": {"input": "x"}})";
    const RequestError error = parse_error(line, 7);
    CAPTURE(url);
    CHECK(error.code == code::kUnsupportedUrl);
    CHECK(error.custom_id == "e1");
    CHECK(error.message.find("url \"" + url + "\" is not supported") != std::string::npos);
  }
  expect_refused(R"({"custom_id": "a", "method": "POST", "body": {"prompt": "x"}})",
                 code::kMissingField, "missing url");
  expect_refused(R"({"custom_id": "a", "method": "POST", "url": 3, "body": {"prompt": "x"}})",
                 code::kInvalidField, "url must be a string, got 3");
}

TEST_CASE("body must be present and an object") {
  expect_refused(R"({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions"})",
                 code::kMissingField, "missing body");
  expect_refused(
      R"({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": "x"})",
      code::kInvalidField, "body must be an object, got string");
  // The endpoint's own input is required: messages for chat, prompt for completions.
  expect_refused(
      R"({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"prompt": "x"}})",
      code::kMissingField, "missing body.messages");
  expect_refused(
      R"({"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": {"messages": []}})",
      code::kMissingField, "missing body.prompt");
}

TEST_CASE("a convenience prompt row is a completions request with a generated custom_id") {
  const BatchRequest request = parse_ok(R"({"prompt": "The sky is", "max_tokens": 5})", 12);
  CHECK(request.endpoint == Endpoint::kCompletions);
  CHECK(request.custom_id == "request-12");
  CHECK(request.prompt == "The sky is");
  CHECK(request.sampling.max_tokens == 5);
  // Stable across reruns: resume matches output lines to input lines by this id.
  CHECK(parse_ok(R"({"prompt": "other text"})", 12).custom_id == "request-12");
}

TEST_CASE("a convenience messages row is a chat request, sampling fields beside it") {
  const BatchRequest request = parse_ok(
      R"({"messages": [{"role": "user", "content": "Hi"}], "temperature": 0, "seed": 3, "n": 2})",
      4);
  CHECK(request.endpoint == Endpoint::kChatCompletions);
  CHECK(request.custom_id == "request-4");
  CHECK(request.sampling.is_greedy());
  CHECK(request.sampling.seed == 3u);
  CHECK(request.n == 2);
}

TEST_CASE("a convenience row may bring its own custom_id") {
  CHECK(parse_ok(R"({"custom_id": "mine", "prompt": "x"})").custom_id == "mine");
  expect_refused(R"({"custom_id": 5, "prompt": "x"})", code::kInvalidField,
                 "custom_id must be a string");
}

TEST_CASE("convenience row errors name fields without a body prefix") {
  const RequestError error = parse_error(R"({"prompt": "x", "temperature": "warm"})", 7);
  CHECK(error.code == code::kInvalidField);
  CHECK(error.custom_id == "request-7");
  CHECK(error.message == "line 7: temperature must be a number, got string");
}

TEST_CASE("a row without body must have exactly one of messages and prompt") {
  expect_refused(R"({"prompt": "x", "messages": [{"role": "user", "content": "y"}]})",
                 code::kInvalidField, "not both");
  expect_refused(R"({"custom_id": "x", "max_tokens": 4})", code::kMissingField, "missing body");
  expect_refused(R"({})", code::kMissingField, "missing body");
  expect_refused(R"({"prompt": null})", code::kMissingField, "missing body");
  // A row with envelope fields but no body is an OpenAI row that forgot "body".
  expect_refused(
      R"({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "messages": []})",
      code::kMissingField, "missing body");
}

TEST_CASE("generated error custom_ids: line-N before the shape is known") {
  CHECK(parse_error("{", 31).custom_id == "line-31");
  CHECK(parse_error("[]", 32).custom_id == "line-32");
  CHECK(parse_error(R"({"method": "POST"})", 33).custom_id == "line-33");
}
