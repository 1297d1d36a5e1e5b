// Output lines, read back with nlohmann: their shape, usage sums, log-probs, UTF-8.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/tokenizer/utf8.h"
#include "coordinator/batch/random_id.h"
#include "coordinator/batch/result_line.h"

using namespace conveyor;
using nlohmann::json;

namespace {

// Token i decodes to "t<i>", except for a few chosen to test bytes and UTF-8.
std::string test_token_text(std::int32_t token) {
  switch (token) {
    case 100:
      return "\xE2\x82";  // the first two bytes of "€": not valid UTF-8 on its own
    case 101:
      return "\xAC";  // its last byte
    case 102:
      return "\xC3\xA9";  // "é": two bytes, one code point
    case 103:
      return " \xC3\xA9";  // the same text as 104 after...
    case 104:
      return " \xC3\xA9";  // ...which shares it
    default:
      return "t" + std::to_string(token);
  }
}

BatchRequest chat_request() {
  BatchRequest request;
  request.line_number = 3;
  request.custom_id = "req-7";
  request.endpoint = Endpoint::kChatCompletions;
  return request;
}

BatchRequest completion_request() {
  BatchRequest request = chat_request();
  request.endpoint = Endpoint::kCompletions;
  return request;
}

ChoiceOutput choice(std::string text, FinishReason reason, std::vector<std::int32_t> tokens) {
  ChoiceOutput out;
  out.text = std::move(text);
  out.finish_reason = reason;
  out.tokens = std::move(tokens);
  return out;
}

SampleResult sample(std::int32_t token, float logprob, std::vector<TokenLogprob> top = {}) {
  SampleResult result;
  result.token = token;
  result.logprob = logprob;
  result.top_logprobs = std::move(top);
  return result;
}

bool is_hex(const std::string& text) {
  return text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// Parses one output line, checking its framing: one object, one trailing newline.
json parse_line(const std::string& line) {
  REQUIRE_FALSE(line.empty());
  CHECK(line.back() == '\n');
  CHECK(line.find('\n') == line.size() - 1);
  CHECK(utf8::is_valid(line));
  return json::parse(line);
}

const ResultMeta kMeta{"SmolLM2-135M-Instruct", 1700000000};

}  // namespace

TEST_CASE("a chat result line has the OpenAI batch shape") {
  const BatchRequest request = chat_request();
  const std::vector<ChoiceOutput> choices = {
      choice("Paris.", FinishReason::kStop, {5, 6, 7}),
      choice("The capital", FinishReason::kLength, {8, 9}),
  };
  const std::string text = format_result_line(request, 11, choices, kMeta, test_token_text);
  CHECK(text.rfind(R"({"id":"batch_req_)", 0) == 0);  // OpenAI's key order
  const json line = parse_line(text);

  const std::string id = line["id"];
  REQUIRE(id.rfind("batch_req_", 0) == 0);
  CHECK(id.size() == 10 + 24);
  CHECK(is_hex(id.substr(10)));
  CHECK(line["custom_id"] == "req-7");
  CHECK(line["error"].is_null());

  const json& response = line["response"];
  CHECK(response["status_code"] == 200);
  const std::string request_id = response["request_id"];
  CHECK(request_id.rfind("req_", 0) == 0);
  CHECK(is_hex(request_id.substr(4)));

  const json& body = response["body"];
  const std::string body_id = body["id"];
  CHECK(body_id.rfind("chatcmpl-", 0) == 0);
  CHECK(is_hex(body_id.substr(9)));
  CHECK(body["object"] == "chat.completion");
  CHECK(body["created"] == 1700000000);
  CHECK(body["model"] == "SmolLM2-135M-Instruct");
  REQUIRE(body["choices"].size() == 2);
  const json& first = body["choices"][0];
  CHECK(first["index"] == 0);
  CHECK(first["message"]["role"] == "assistant");
  CHECK(first["message"]["content"] == "Paris.");
  CHECK(first["logprobs"].is_null());
  CHECK(first["finish_reason"] == "stop");
  CHECK(body["choices"][1]["index"] == 1);
  CHECK(body["choices"][1]["message"]["content"] == "The capital");
  CHECK(body["choices"][1]["finish_reason"] == "length");
  CHECK(body["usage"]["prompt_tokens"] == 11);
  CHECK(body["usage"]["completion_tokens"] == 5);  // over both choices
  CHECK(body["usage"]["total_tokens"] == 16);
}

TEST_CASE("a completions result line is a text_completion") {
  const std::vector<ChoiceOutput> choices = {choice(" there was", FinishReason::kLength, {1, 2})};
  const json line =
      parse_line(format_result_line(completion_request(), 4, choices, kMeta, test_token_text));
  const json& body = line["response"]["body"];
  CHECK(body["id"].get<std::string>().rfind("cmpl-", 0) == 0);
  CHECK(body["object"] == "text_completion");
  REQUIRE(body["choices"].size() == 1);
  CHECK(body["choices"][0]["index"] == 0);
  CHECK(body["choices"][0]["text"] == " there was");
  CHECK_FALSE(body["choices"][0].contains("message"));
  CHECK(body["choices"][0]["logprobs"].is_null());
  CHECK(body["choices"][0]["finish_reason"] == "length");
  CHECK(body["usage"] == json{{"prompt_tokens", 4}, {"completion_tokens", 2}, {"total_tokens", 6}});
}

TEST_CASE("no choices and no tokens still make a well-formed line") {
  const json line = parse_line(format_result_line(chat_request(), 0, {}, {}, test_token_text));
  CHECK(line["response"]["body"]["choices"].empty());
  CHECK(line["response"]["body"]["usage"]["total_tokens"] == 0);
  CHECK(line["response"]["body"]["model"] == "");
}

TEST_CASE("chat log-probs: token, logprob, bytes and top_logprobs per token") {
  BatchRequest request = chat_request();
  request.sampling.logprobs = true;
  request.sampling.top_logprobs = 2;
  ChoiceOutput out = choice("t5\xC3\xA9", FinishReason::kStop, {5, 102});
  out.logprobs = {sample(5, -0.5f, {{5, -0.5f}, {6, -1.25f}}),
                  sample(102, -0.1f, {{102, -0.1f}, {7, -std::numeric_limits<float>::infinity()}})};
  const std::string text =
      format_result_line(request, 2, std::span(&out, 1), kMeta, test_token_text);
  // Floats go out as their shortest decimal, not widened to 17 digits.
  CHECK(text.find("-0.1,") != std::string::npos);
  CHECK(text.find("-0.10000000149") == std::string::npos);
  const json line = parse_line(text);
  const json& logprobs = line["response"]["body"]["choices"][0]["logprobs"];
  REQUIRE(logprobs["content"].size() == 2);
  const json& first = logprobs["content"][0];
  CHECK(first["token"] == "t5");
  CHECK(first["logprob"] == -0.5);
  CHECK(first["bytes"] == json{116, 53});
  REQUIRE(first["top_logprobs"].size() == 2);
  CHECK(first["top_logprobs"][1] ==
        json{{"token", "t6"}, {"logprob", -1.25}, {"bytes", {116, 54}}});
  const json& second = logprobs["content"][1];
  CHECK(second["token"] == "\xC3\xA9");
  CHECK(second["logprob"].get<double>() == doctest::Approx(-0.1));
  CHECK(second["bytes"] == json{0xC3, 0xA9});
  CHECK(second["top_logprobs"][1]["logprob"] == kLogprobFloor);  // -inf has no JSON form
}

TEST_CASE("completions log-probs: parallel arrays, offsets in code points") {
  BatchRequest request = completion_request();
  request.sampling.logprobs = true;
  request.sampling.top_logprobs = 2;
  ChoiceOutput out = choice("t1\xC3\xA9t2", FinishReason::kLength, {1, 102, 2});
  out.logprobs = {sample(1, -0.25f, {{1, -0.25f}, {3, -2.0f}}),
                  sample(102, -1.5f, {{103, -1.0f}, {104, -1.5f}}), sample(2, -3.0f, {})};
  const json line =
      parse_line(format_result_line(request, 1, std::span(&out, 1), kMeta, test_token_text));
  const json& logprobs = line["response"]["body"]["choices"][0]["logprobs"];
  CHECK(logprobs["tokens"] == json{"t1", "\xC3\xA9", "t2"});
  CHECK(logprobs["token_logprobs"] == json{-0.25, -1.5, -3.0});
  CHECK(logprobs["text_offset"] == json{0, 2, 3});  // "é" is one code point
  REQUIRE(logprobs["top_logprobs"].size() == 3);
  CHECK(logprobs["top_logprobs"][0] == json{{"t1", -0.25}, {"t3", -2.0}});
  // Two alternatives with the same text: the likelier, listed first, is kept.
  CHECK(logprobs["top_logprobs"][1] == json{{" \xC3\xA9", -1.0}});
  CHECK(logprobs["top_logprobs"][2] == json::object());
}

TEST_CASE("token text that is not valid UTF-8 still gives a valid line") {
  BatchRequest request = chat_request();
  request.sampling.logprobs = true;
  request.sampling.top_logprobs = 1;
  // The model emitted "€" as two tokens; the choice text holds a stray byte too.
  ChoiceOutput out = choice("\xE2\x82\xAC and \xFF", FinishReason::kStop, {100, 101});
  out.logprobs = {sample(100, -0.5f, {{100, -0.5f}}), sample(101, -0.25f, {{101, -0.25f}})};
  const std::string text =
      format_result_line(request, 1, std::span(&out, 1), kMeta, test_token_text);
  const json line = parse_line(text);  // checks utf8::is_valid
  const json& body = line["response"]["body"];
  CHECK(body["choices"][0]["message"]["content"] == "\xE2\x82\xAC and \xEF\xBF\xBD");
  const json& content = body["choices"][0]["logprobs"]["content"];
  CHECK(content[0]["token"] == "\xEF\xBF\xBD");    // U+FFFD
  CHECK(content[0]["bytes"] == json{0xE2, 0x82});  // the exact bytes survive
  CHECK(content[1]["bytes"] == json{0xAC});
  CHECK(content[1]["top_logprobs"][0]["bytes"] == json{0xAC});

  // The same in completions form, where token texts are also object keys.
  BatchRequest completion = completion_request();
  completion.sampling = request.sampling;
  const json completion_line =
      parse_line(format_result_line(completion, 1, std::span(&out, 1), kMeta, test_token_text));
  const json& top = completion_line["response"]["body"]["choices"][0]["logprobs"]["top_logprobs"];
  CHECK(top[0] == json{{"\xEF\xBF\xBD", -0.5}});
}

TEST_CASE("a custom_id that is not UTF-8 cannot break the line") {
  BatchRequest request = chat_request();
  request.custom_id = "id-\xC0";
  const json line = parse_line(format_result_line(request, 0, {}, kMeta, test_token_text));
  CHECK(line["custom_id"] == "id-\xEF\xBF\xBD");
}

TEST_CASE("token_text is not called when log-probs are off") {
  const std::vector<ChoiceOutput> choices = {choice("x", FinishReason::kStop, {1, 2, 3})};
  int calls = 0;
  const TokenText counting = [&](std::int32_t token) {
    ++calls;
    return test_token_text(token);
  };
  parse_line(format_result_line(chat_request(), 1, choices, kMeta, counting));
  CHECK(calls == 0);
}

TEST_CASE("an error line has a null response and the error's code, message and line") {
  RequestError error;
  error.line_number = 7;
  error.custom_id = "req-9";
  error.code = "invalid_field";
  error.message = "line 7: body.temperature must be a number, got string";
  const std::string text = format_error_line(error);
  CHECK(text.rfind(R"({"id":"batch_req_)", 0) == 0);
  const json line = parse_line(text);
  CHECK(line["id"].get<std::string>().size() == 10 + 24);
  CHECK(line["custom_id"] == "req-9");
  CHECK(line["response"].is_null());
  CHECK(line["error"] == json{{"code", "invalid_field"},
                              {"message", "line 7: body.temperature must be a number, got string"},
                              {"line", 7}});

  error.line_number = 0;  // not tied to a line: a request that failed while generating
  error.message = "bad \xFF byte";
  const json unlined = parse_line(format_error_line(error));
  CHECK_FALSE(unlined["error"].contains("line"));
  CHECK(unlined["error"]["message"] == "bad \xEF\xBF\xBD byte");
}

TEST_CASE("random ids are hex, of the asked length, and do not repeat across threads") {
  CHECK(random_hex(0).empty());
  CHECK(random_hex(7).size() == 7);
  CHECK(is_hex(random_hex(40)));
  std::mutex mutex;
  std::set<std::string> ids;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      std::vector<std::string> mine;
      for (int i = 0; i < 500; ++i)
        mine.push_back(random_hex(24));
      const std::lock_guard lock(mutex);
      ids.insert(mine.begin(), mine.end());
    });
  }
  for (std::thread& thread : threads)
    thread.join();
  CHECK(ids.size() == 2000);
}
