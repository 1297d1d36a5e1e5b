#include "coordinator/batch/result_line.h"

#include <charconv>
#include <cmath>

#include <nlohmann/json.hpp>

#include "common/tokenizer/utf8.h"
#include "coordinator/batch/random_id.h"

namespace conveyor {
namespace {

// Keys in insertion order, so that lines read as OpenAI writes them (id first).
using Json = nlohmann::ordered_json;

// The shortest decimal that reads back as the same float, widened to double: a float
// log-prob goes out as -0.1, not as -0.10000000149011612. -inf (and NaN, which a
// log-prob should never be) become kLogprobFloor.
double logprob_value(float logprob) {
  if (!std::isfinite(logprob) || logprob < kLogprobFloor) return kLogprobFloor;
  char buffer[32];
  const auto written = std::to_chars(buffer, buffer + sizeof(buffer), logprob);
  double widened = logprob;
  std::from_chars(buffer, written.ptr, widened);
  return widened;
}

Json logprob_json(const std::optional<float>& logprob) {
  if (!logprob) return nullptr;  // the caller did not compute it
  return logprob_value(*logprob);
}

Json bytes_json(const std::string& raw) {
  Json bytes = Json::array();
  for (const char c : raw)
    bytes.push_back(static_cast<unsigned char>(c));
  return bytes;
}

// Code points in valid UTF-8: every byte that is not a continuation byte starts one.
std::int64_t code_points(const std::string& text) {
  std::int64_t count = 0;
  for (const char c : text)
    count += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return count;
}

// {"token", "logprob", "bytes"}: one chat log-prob entry.
Json chat_token(std::int32_t token, const std::optional<float>& logprob,
                const TokenText& token_text) {
  const std::string raw = token_text(token);
  Json entry = Json::object();
  entry["token"] = utf8::sanitize(raw);
  entry["logprob"] = logprob_json(logprob);
  entry["bytes"] = bytes_json(raw);
  return entry;
}

Json chat_logprobs(const ChoiceOutput& choice, const TokenText& token_text) {
  Json content = Json::array();
  for (const SampleResult& sample : choice.logprobs) {
    Json entry = chat_token(sample.token, sample.logprob, token_text);
    Json alternatives = Json::array();
    for (const TokenLogprob& alternative : sample.top_logprobs) {
      alternatives.push_back(chat_token(alternative.token, alternative.logprob, token_text));
    }
    entry["top_logprobs"] = std::move(alternatives);
    content.push_back(std::move(entry));
  }
  Json logprobs = Json::object();
  logprobs["content"] = std::move(content);
  return logprobs;
}

Json completion_logprobs(const ChoiceOutput& choice, const TokenText& token_text) {
  Json tokens = Json::array();
  Json token_logprobs = Json::array();
  Json top_logprobs = Json::array();
  Json text_offset = Json::array();
  std::int64_t offset = 0;
  for (const SampleResult& sample : choice.logprobs) {
    const std::string text = utf8::sanitize(token_text(sample.token));
    tokens.push_back(text);
    token_logprobs.push_back(logprob_json(sample.logprob));
    text_offset.push_back(offset);
    offset += code_points(text);
    Json alternatives = Json::object();
    for (const TokenLogprob& alternative : sample.top_logprobs) {
      // emplace keeps the first, likelier, entry when two tokens share a text.
      alternatives.emplace(utf8::sanitize(token_text(alternative.token)),
                           logprob_value(alternative.logprob));
    }
    top_logprobs.push_back(std::move(alternatives));
  }
  Json logprobs = Json::object();
  logprobs["tokens"] = std::move(tokens);
  logprobs["token_logprobs"] = std::move(token_logprobs);
  logprobs["top_logprobs"] = std::move(top_logprobs);
  logprobs["text_offset"] = std::move(text_offset);
  return logprobs;
}

Json choice_json(const BatchRequest& request, std::size_t index, const ChoiceOutput& choice,
                 const TokenText& token_text) {
  const bool chat = request.endpoint == Endpoint::kChatCompletions;
  Json out = Json::object();
  out["index"] = index;
  if (chat) {
    Json message = Json::object();
    message["role"] = "assistant";
    message["content"] = utf8::sanitize(choice.text);
    out["message"] = std::move(message);
  } else {
    out["text"] = utf8::sanitize(choice.text);
  }
  if (!request.sampling.logprobs) {
    out["logprobs"] = nullptr;
  } else if (chat) {
    out["logprobs"] = chat_logprobs(choice, token_text);
  } else {
    out["logprobs"] = completion_logprobs(choice, token_text);
  }
  out["finish_reason"] = std::string(to_string(choice.finish_reason));
  return out;
}

Json response_body(const BatchRequest& request, std::int64_t prompt_tokens,
                   std::span<const ChoiceOutput> choices, const ResultMeta& meta,
                   const TokenText& token_text) {
  const bool chat = request.endpoint == Endpoint::kChatCompletions;
  Json body = Json::object();
  body["id"] = (chat ? "chatcmpl-" : "cmpl-") + random_hex(32);
  body["object"] = chat ? "chat.completion" : "text_completion";
  body["created"] = meta.created;
  body["model"] = meta.model;
  Json choice_list = Json::array();
  std::int64_t completion_tokens = 0;
  for (std::size_t i = 0; i < choices.size(); ++i) {
    choice_list.push_back(choice_json(request, i, choices[i], token_text));
    completion_tokens += static_cast<std::int64_t>(choices[i].tokens.size());
  }
  body["choices"] = std::move(choice_list);
  Json usage = Json::object();
  usage["prompt_tokens"] = prompt_tokens;
  usage["completion_tokens"] = completion_tokens;
  usage["total_tokens"] = prompt_tokens + completion_tokens;
  body["usage"] = std::move(usage);
  return body;
}

std::string to_line(const Json& line) {
  // Every string was sanitised already; replace is the backstop that keeps a line
  // valid UTF-8 (a throwing dump would lose the request's result).
  return line.dump(-1, ' ', false, Json::error_handler_t::replace) + '\n';
}

}  // namespace

std::string format_result_line(const BatchRequest& request, std::int64_t prompt_tokens,
                               std::span<const ChoiceOutput> choices, const ResultMeta& meta,
                               const TokenText& token_text) {
  Json response = Json::object();
  response["status_code"] = 200;
  response["request_id"] = "req_" + random_hex(32);
  response["body"] = response_body(request, prompt_tokens, choices, meta, token_text);
  Json line = Json::object();
  line["id"] = "batch_req_" + random_hex(24);
  line["custom_id"] = utf8::sanitize(request.custom_id);
  line["response"] = std::move(response);
  line["error"] = nullptr;
  return to_line(line);
}

std::string format_error_line(const RequestError& error) {
  Json detail = Json::object();
  detail["code"] = error.code;
  detail["message"] = utf8::sanitize(error.message);
  if (error.line_number != 0) detail["line"] = error.line_number;
  Json line = Json::object();
  line["id"] = "batch_req_" + random_hex(24);
  line["custom_id"] = utf8::sanitize(error.custom_id);
  line["response"] = nullptr;
  line["error"] = std::move(detail);
  return to_line(line);
}

}  // namespace conveyor
