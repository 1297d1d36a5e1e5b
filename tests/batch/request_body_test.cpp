// Body fields of a batch line and how each maps onto BatchRequest and SamplingParams.
#include <doctest/doctest.h>

#include <string>

#include "tests/batch/batch_test_util.h"

using namespace conveyor;
using namespace conveyor::testing;
namespace code = request_error_code;

namespace {

// An OpenAI chat row: one user message, then `extra` body fields.
std::string chat(const std::string& extra) {
  return R"({"custom_id": "r", "method": "POST", "url": "/v1/chat/completions", "body": )"
         R"({"messages": [{"role": "user", "content": "Hi"}])" +
         extra + "}}";
}

// An OpenAI completions row with the prompt "x", then `extra` body fields.
std::string completion(const std::string& extra) {
  return R"({"custom_id": "r", "method": "POST", "url": "/v1/completions", "body": )"
         R"({"prompt": "x")" +
         extra + "}}";
}

// A chat row whose body is exactly `body`.
std::string chat_body(const std::string& body) {
  return R"({"custom_id": "r", "method": "POST", "url": "/v1/chat/completions", "body": )" + body +
         "}";
}

std::string completion_body(const std::string& body) {
  return R"({"custom_id": "r", "method": "POST", "url": "/v1/completions", "body": )" + body + "}";
}

}  // namespace

TEST_CASE("messages: roles, developer as system, content strings") {
  const BatchRequest request = parse_ok(chat_body(
      R"({"messages": [{"role": "developer", "content": "Be brief."},
                       {"role": "system", "content": "Be kind."},
                       {"role": "user", "content": "Hi", "name": "ana"},
                       {"role": "assistant", "content": ""},
                       {"role": "user", "content": "caf\u00e9 \n ok"}]})"));
  REQUIRE(request.messages.size() == 5);
  CHECK(request.messages[0].role == "system");
  CHECK(request.messages[0].content == "Be brief.");
  CHECK(request.messages[1].role == "system");
  CHECK(request.messages[2].role == "user");
  CHECK(request.messages[3].role == "assistant");
  CHECK(request.messages[3].content.empty());
  CHECK(request.messages[4].content == "caf\xC3\xA9 \n ok");
}

TEST_CASE("messages: text parts are joined with newlines") {
  const BatchRequest request = parse_ok(chat_body(
      R"({"messages": [{"role": "user", "content": [{"type": "text", "text": "Describe"},
                                                     {"type": "text", "text": "a cat."}]}]})"));
  REQUIRE(request.messages.size() == 1);
  CHECK(request.messages[0].content == "Describe\na cat.");
  CHECK(parse_ok(chat_body(R"({"messages": [{"role": "user", "content": []}]})"))
            .messages[0]
            .content.empty());
}

TEST_CASE("messages: every malformed shape is named precisely") {
  expect_refused(chat_body(R"({"messages": "Hi"})"), code::kInvalidField,
                 "body.messages must be an array of messages, got string");
  expect_refused(chat_body(R"({"messages": []})"), code::kInvalidField, "body.messages is empty");
  expect_refused(chat_body(R"({"messages": ["Hi"]})"), code::kInvalidField,
                 "body.messages[0] must be an object, got string");
  expect_refused(chat_body(R"({"messages": [{"content": "Hi"}]})"), code::kMissingField,
                 "missing body.messages[0].role");
  expect_refused(chat_body(R"({"messages": [{"role": "user"}]})"), code::kMissingField,
                 "missing body.messages[0].content");
  expect_refused(chat_body(R"({"messages": [{"role": "user", "content": null}]})"),
                 code::kMissingField, "missing body.messages[0].content");
  expect_refused(chat_body(R"({"messages": [{"role": "user", "content": 5}]})"),
                 code::kInvalidField,
                 "body.messages[0].content must be a string or an array of text parts, got 5");
  expect_refused(chat_body(R"({"messages": [{"role": 1, "content": "x"}]})"), code::kInvalidField,
                 "body.messages[0].role must be a string, got 1");
  expect_refused(
      chat_body(
          R"({"messages": [{"role": "user", "content": "x"}, {"role": "tool", "content": "y"}]})"),
      code::kInvalidField, R"(body.messages[1].role is "tool")");
  expect_refused(chat_body(R"({"messages": [{"role": "user", "content": ["x"]}]})"),
                 code::kInvalidField, "body.messages[0].content[0] must be an object, got string");
  expect_refused(chat_body(R"({"messages": [{"role": "user", "content": [{"text": "x"}]}]})"),
                 code::kMissingField, "missing body.messages[0].content[0].type");
  expect_refused(
      chat_body(R"({"messages": [{"role": "user", "content": [{"type": "text", "text": 3}]}]})"),
      code::kInvalidField, "body.messages[0].content[0].text must be a string, got 3");
  expect_refused(
      chat_body(
          R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]})"),
      code::kInvalidField, R"(body.messages[0].content[0].type is "image_url"; only text parts)");
}

TEST_CASE("prompt: text, token ids, or a one-element array of text") {
  CHECK(parse_ok(completion_body(R"({"prompt": "Hello"})")).prompt == "Hello");
  CHECK(parse_ok(completion_body(R"({"prompt": ["Hello"]})")).prompt == "Hello");
  const BatchRequest ids = parse_ok(completion_body(R"({"prompt": [1, 22, 2147483647, 0]})"));
  REQUIRE(ids.prompt_ids.has_value());
  CHECK(*ids.prompt_ids == std::vector<std::int32_t>{1, 22, 2147483647, 0});
  CHECK(ids.prompt.empty());
  CHECK(parse_ok(completion_body(R"({"prompt": [5.0]})")).prompt_ids->at(0) == 5);
}

TEST_CASE("prompt: malformed values are refused") {
  expect_refused(completion_body(R"({"prompt": ""})"), code::kInvalidField, "body.prompt is empty");
  expect_refused(completion_body(R"({"prompt": [""]})"), code::kInvalidField,
                 "body.prompt is empty");
  expect_refused(completion_body(R"({"prompt": []})"), code::kInvalidField, "body.prompt is empty");
  expect_refused(completion_body(R"({"prompt": ["a", "b"]})"), code::kInvalidField,
                 "body.prompt holds 2 prompts");
  expect_refused(completion_body(R"({"prompt": [1, -2]})"), code::kInvalidField,
                 "body.prompt[1] must be an integer in [0, 2147483647], got -2");
  expect_refused(completion_body(R"({"prompt": [1, 2147483648]})"), code::kInvalidField,
                 "body.prompt[1] must be an integer in [0, 2147483647]");
  expect_refused(completion_body(R"({"prompt": [1, "a"]})"), code::kInvalidField,
                 "body.prompt[1] must be an integer, got string");
  expect_refused(completion_body(R"({"prompt": [[1, 2]]})"), code::kInvalidField,
                 "body.prompt[0] must be an integer, got array");
  expect_refused(completion_body(R"({"prompt": [1.5]})"), code::kInvalidField,
                 "body.prompt[0] must be an integer, got 1.5");
  expect_refused(completion_body(R"({"prompt": {"text": "x"}})"), code::kInvalidField,
                 "body.prompt must be a string or an array of token ids, got object");
}

TEST_CASE("model is optional and must be a string") {
  CHECK(parse_ok(chat(R"(, "model": "SmolLM2-135M-Instruct")")).model == "SmolLM2-135M-Instruct");
  CHECK_FALSE(parse_ok(chat(R"(, "model": null)")).model.has_value());
  expect_refused(chat(R"(, "model": 7)"), code::kInvalidField,
                 "body.model must be a string, got 7");
}

TEST_CASE("max_tokens and max_completion_tokens") {
  CHECK(parse_ok(chat("")).sampling.max_tokens == 1024);  // the limits' default
  RequestLineLimits limits;
  limits.default_max_tokens = 77;
  CHECK(parse_ok(chat(""), 1, limits).sampling.max_tokens == 77);
  CHECK(parse_ok(chat(R"(, "max_tokens": 30)")).sampling.max_tokens == 30);
  CHECK(parse_ok(chat(R"(, "max_completion_tokens": 40)")).sampling.max_tokens == 40);
  CHECK(parse_ok(chat(R"(, "max_tokens": 50, "max_completion_tokens": 50)")).sampling.max_tokens ==
        50);
  CHECK(parse_ok(chat(R"(, "max_tokens": 100.0)")).sampling.max_tokens == 100);
  CHECK(parse_ok(chat(R"(, "max_tokens": null)")).sampling.max_tokens == 1024);
  CHECK(parse_ok(chat(R"(, "max_tokens": 2147483647)")).sampling.max_tokens == 2147483647);
  expect_refused(chat(R"(, "max_tokens": 10, "max_completion_tokens": 20)"), code::kInvalidField,
                 "body.max_tokens (10) and body.max_completion_tokens (20) disagree");
  expect_refused(chat(R"(, "max_tokens": 0)"), code::kInvalidField,
                 "body.max_tokens must be an integer in [1, 2147483647], got 0");
  expect_refused(chat(R"(, "max_completion_tokens": -5)"), code::kInvalidField,
                 "body.max_completion_tokens must be an integer in [1, 2147483647], got -5");
  expect_refused(chat(R"(, "max_tokens": 2147483648)"), code::kInvalidField,
                 "body.max_tokens must be an integer in [1, 2147483647]");
  expect_refused(chat(R"(, "max_tokens": 99999999999999999999999)"), code::kInvalidField,
                 "body.max_tokens must be an integer in [1, 2147483647]");
  expect_refused(chat(R"(, "max_tokens": 1.5)"), code::kInvalidField,
                 "body.max_tokens must be an integer, got 1.5");
  expect_refused(chat(R"(, "max_tokens": "10")"), code::kInvalidField,
                 "body.max_tokens must be an integer, got string");
  expect_refused(chat(R"(, "max_tokens": true)"), code::kInvalidField,
                 "body.max_tokens must be an integer, got boolean");
}

TEST_CASE("sampling numbers map onto SamplingParams") {
  const BatchRequest request = parse_ok(chat(
      R"(, "temperature": 0.7, "top_p": 0.9, "top_k": 40, "min_p": 0.05,
         "presence_penalty": 0.5, "frequency_penalty": -0.25, "repetition_penalty": 1.2)"));
  const SamplingParams& s = request.sampling;
  CHECK(s.temperature == doctest::Approx(0.7f));
  CHECK(s.top_p == doctest::Approx(0.9f));
  CHECK(s.top_k == 40);
  CHECK(s.min_p == doctest::Approx(0.05f));
  CHECK(s.presence_penalty == doctest::Approx(0.5f));
  CHECK(s.frequency_penalty == doctest::Approx(-0.25f));
  CHECK(s.repetition_penalty == doctest::Approx(1.2f));
  CHECK_FALSE(s.is_greedy());

  // Defaults when absent.
  const SamplingParams defaults = parse_ok(chat("")).sampling;
  CHECK(defaults.temperature == 1.0f);
  CHECK(defaults.top_p == 1.0f);
  CHECK(defaults.top_k == 0);
  CHECK(defaults.min_p == 0.0f);
  CHECK(defaults.repetition_penalty == 1.0f);
  CHECK_FALSE(defaults.seed.has_value());
  CHECK(defaults.stop_strings.empty());
  CHECK_FALSE(defaults.ignore_eos);
  CHECK_FALSE(defaults.logprobs);

  CHECK(parse_ok(chat(R"(, "temperature": 0)")).sampling.is_greedy());
  CHECK(parse_ok(chat(R"(, "temperature": 2)")).sampling.temperature == 2.0f);
  CHECK(parse_ok(chat(R"(, "top_k": -1)")).sampling.top_k == -1);
  CHECK(parse_ok(chat(R"(, "top_k": 0)")).sampling.top_k == 0);
}

TEST_CASE("sampling numbers: wrong types and nonsense values name the field") {
  expect_refused(chat(R"(, "temperature": "hot")"), code::kInvalidField,
                 "body.temperature must be a number, got string");
  expect_refused(chat(R"(, "temperature": -1)"), code::kInvalidField,
                 "body.temperature must be finite and >= 0, got -1");
  expect_refused(chat(R"(, "temperature": 1e300)"), code::kInvalidField, "body.temperature");
  expect_refused(chat(R"(, "top_p": 3)"), code::kInvalidField, "body.top_p must be in (0, 1]");
  expect_refused(chat(R"(, "top_p": 0)"), code::kInvalidField, "body.top_p");
  expect_refused(chat(R"(, "top_p": [1])"), code::kInvalidField,
                 "body.top_p must be a number, got array");
  expect_refused(chat(R"(, "top_k": -2)"), code::kInvalidField,
                 "body.top_k must be an integer in [-1, 2147483647], got -2");
  expect_refused(chat(R"(, "top_k": 2.5)"), code::kInvalidField,
                 "body.top_k must be an integer, got 2.5");
  expect_refused(chat(R"(, "min_p": 1.5)"), code::kInvalidField, "body.min_p");
  expect_refused(chat(R"(, "presence_penalty": 3)"), code::kInvalidField, "body.presence_penalty");
  expect_refused(chat(R"(, "frequency_penalty": -2.5)"), code::kInvalidField,
                 "body.frequency_penalty");
  expect_refused(chat(R"(, "repetition_penalty": 0)"), code::kInvalidField,
                 "body.repetition_penalty");
  expect_refused(chat(R"(, "repetition_penalty": {})"), code::kInvalidField,
                 "body.repetition_penalty must be a number, got object");
}

TEST_CASE("seed: any integer from 0 to 2^64-1") {
  CHECK(parse_ok(chat(R"(, "seed": 0)")).sampling.seed == 0u);
  CHECK(parse_ok(chat(R"(, "seed": 42)")).sampling.seed == 42u);
  CHECK(parse_ok(chat(R"(, "seed": 18446744073709551615)")).sampling.seed ==
        18446744073709551615ull);
  CHECK(parse_ok(chat(R"(, "seed": 1e3)")).sampling.seed == 1000u);
  CHECK_FALSE(parse_ok(chat(R"(, "seed": null)")).sampling.seed.has_value());
  expect_refused(chat(R"(, "seed": -1)"), code::kInvalidField,
                 "body.seed must be an integer in [0, 18446744073709551615], got -1");
  expect_refused(chat(R"(, "seed": 18446744073709551616)"), code::kInvalidField,
                 "body.seed must be an integer in [0, 18446744073709551615]");
  expect_refused(chat(R"(, "seed": 1.5)"), code::kInvalidField,
                 "body.seed must be an integer, got 1.5");
  expect_refused(chat(R"(, "seed": "42")"), code::kInvalidField,
                 "body.seed must be an integer, got string");
}

TEST_CASE("stop: a string or an array of strings") {
  CHECK(parse_ok(chat(R"(, "stop": "\n")")).sampling.stop_strings ==
        std::vector<std::string>{"\n"});
  CHECK(parse_ok(chat(R"(, "stop": ["END", "###"])")).sampling.stop_strings ==
        std::vector<std::string>{"END", "###"});
  CHECK(parse_ok(chat(R"(, "stop": [])")).sampling.stop_strings.empty());
  CHECK(parse_ok(chat(R"(, "stop": null)")).sampling.stop_strings.empty());
  expect_refused(chat(R"(, "stop": "")"), code::kInvalidField, "body.stop is empty");
  expect_refused(chat(R"(, "stop": ["a", ""])"), code::kInvalidField, "body.stop[1] is empty");
  expect_refused(chat(R"(, "stop": ["a", 3])"), code::kInvalidField,
                 "body.stop[1] must be a string, got 3");
  expect_refused(chat(R"(, "stop": 3)"), code::kInvalidField,
                 "body.stop must be a string or an array of strings, got 3");
  std::string many = R"(, "stop": [)";
  for (int i = 0; i < 33; ++i)
    many += (i ? ", " : "") + std::string("\"s\"");
  expect_refused(chat(many + "]"), code::kInvalidField, "body.stop has 33 entries; at most 32");
  expect_refused(chat(R"(, "stop": ")" + std::string(513, 'x') + "\""), code::kInvalidField,
                 "body.stop is 513 bytes long");
  expect_refused(chat(R"(, "stop": ["a", ")" + std::string(513, 'x') + "\"]"), code::kInvalidField,
                 "body.stop[1] is 513 bytes long");
}

TEST_CASE("stop_token_ids, ignore_eos and n") {
  const BatchRequest request =
      parse_ok(chat(R"(, "stop_token_ids": [2, 49152], "ignore_eos": true, "n": 3)"));
  CHECK(request.sampling.stop_token_ids == std::vector<std::int32_t>{2, 49152});
  CHECK(request.sampling.ignore_eos);
  CHECK(request.n == 3);
  expect_refused(chat(R"(, "stop_token_ids": [-1])"), code::kInvalidField,
                 "body.stop_token_ids[0] must be an integer in [0, 2147483647], got -1");
  expect_refused(chat(R"(, "stop_token_ids": 2)"), code::kInvalidField,
                 "body.stop_token_ids must be an array of token ids, got 2");
  expect_refused(chat(R"(, "ignore_eos": "yes")"), code::kInvalidField,
                 "body.ignore_eos must be a boolean, got string");
  expect_refused(chat(R"(, "n": 0)"), code::kInvalidField,
                 "body.n must be an integer in [1, 16], got 0");
  expect_refused(chat(R"(, "n": 17)"), code::kInvalidField,
                 "body.n must be an integer in [1, 16], got 17");
  RequestLineLimits limits;
  limits.max_n = 4;
  CHECK(parse_ok(chat(R"(, "n": 4)"), 1, limits).n == 4);
  const RequestError error = parse_error(chat(R"(, "n": 5)"), 1, limits);
  CHECK(error.message == "line 1: body.n must be an integer in [1, 4], got 5");
}

TEST_CASE("chat logprobs: a boolean and top_logprobs with no cap of 20") {
  const SamplingParams on = parse_ok(chat(R"(, "logprobs": true, "top_logprobs": 5)")).sampling;
  CHECK(on.logprobs);
  CHECK(on.top_logprobs == 5);
  const SamplingParams many =
      parse_ok(chat(R"(, "logprobs": true, "top_logprobs": 1000)")).sampling;
  CHECK(many.top_logprobs == 1000);
  const SamplingParams plain = parse_ok(chat(R"(, "logprobs": true)")).sampling;
  CHECK(plain.logprobs);
  CHECK(plain.top_logprobs == 0);
  CHECK_FALSE(parse_ok(chat(R"(, "logprobs": false, "top_logprobs": 0)")).sampling.logprobs);
  expect_refused(chat(R"(, "top_logprobs": 3)"), code::kInvalidField,
                 "body.top_logprobs is 3 but logprobs is false");
  expect_refused(chat(R"(, "logprobs": 5)"), code::kInvalidField,
                 "body.logprobs must be a boolean, got 5");
  expect_refused(chat(R"(, "logprobs": true, "top_logprobs": -1)"), code::kInvalidField,
                 "body.top_logprobs must be an integer in [0, 2147483647], got -1");
}

TEST_CASE("completions logprobs: an integer count of alternatives") {
  const SamplingParams three = parse_ok(completion(R"(, "logprobs": 3)")).sampling;
  CHECK(three.logprobs);
  CHECK(three.top_logprobs == 3);
  const SamplingParams zero = parse_ok(completion(R"(, "logprobs": 0)")).sampling;
  CHECK(zero.logprobs);
  CHECK(zero.top_logprobs == 0);
  CHECK_FALSE(parse_ok(completion(R"(, "logprobs": null)")).sampling.logprobs);
  CHECK_FALSE(parse_ok(completion("")).sampling.logprobs);
  expect_refused(completion(R"(, "logprobs": true)"), code::kInvalidField,
                 "body.logprobs must be an integer, got boolean");
  expect_refused(completion(R"(, "logprobs": -1)"), code::kInvalidField,
                 "body.logprobs must be an integer in [0, 2147483647], got -1");
  // top_logprobs is not a completions field: ignored like any other unknown field.
  CHECK(parse_ok(completion(R"(, "top_logprobs": 4)")).sampling.top_logprobs == 0);
}

TEST_CASE("stream: true and echo: true are refused; false is fine") {
  expect_refused(chat(R"(, "stream": true)"), code::kInvalidField,
                 "body.stream is true; a batch request cannot stream");
  expect_refused(completion(R"(, "echo": true)"), code::kInvalidField, "body.echo is true");
  expect_refused(chat(R"(, "stream": "yes")"), code::kInvalidField,
                 "body.stream must be a boolean, got string");
  parse_ok(chat(R"(, "stream": false, "echo": false)"));
  expect_refused(R"({"prompt": "x", "stream": true})", code::kInvalidField,
                 "line 7: stream is true");
}

TEST_CASE("unknown body fields, and harmless forms of known ones, are ignored") {
  const BatchRequest request = parse_ok(chat(
      R"(, "stream_options": {"include_usage": true}, "response_format": {"type": "text"},
         "user": "u-1", "tools": [], "metadata": {"a": [1, {"b": null}]}, "max_tokens": 12)"));
  CHECK(request.sampling.max_tokens == 12);
}

TEST_CASE("the first problem wins, and messages follow the documented format") {
  const RequestError error = parse_error(chat(R"(, "temperature": "hot", "top_p": "high")"), 7);
  CHECK(error.code == code::kInvalidField);
  CHECK(error.message == "line 7: body.temperature must be a number, got string");
}

namespace conveyor {
namespace {

TEST_CASE("fields that would change the output without being honoured are refused") {
  const RequestLineLimits limits;
  const auto error_of = [&](const std::string& body_fields) {
    const std::string line =
        R"({"custom_id": "x", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": [{"role": "user", "content": "hi"}], )" +
        body_fields + "}}";
    const ParsedLine parsed = parse_request_line(line, 3, limits);
    return std::holds_alternative<RequestError>(parsed) ? std::get<RequestError>(parsed).message
                                                        : std::string();
  };
  CHECK(error_of(R"("logit_bias": {"50256": -100})").find("body.logit_bias is not supported") !=
        std::string::npos);
  CHECK(error_of(R"("tools": [{"type": "function"}])").find("body.tools") != std::string::npos);
  CHECK(error_of(R"("response_format": {"type": "json_schema"})").find("body.response_format") !=
        std::string::npos);
  CHECK(error_of(R"("best_of": 3)").find("body.best_of") != std::string::npos);
  // Empty or plain-text forms change nothing and pass.
  CHECK(error_of(R"("logit_bias": {}, "tools": [], "response_format": {"type": "text"})") == "");
  CHECK(error_of(R"("best_of": 1, "tool_choice": "none")") == "");
}

}  // namespace
}  // namespace conveyor
