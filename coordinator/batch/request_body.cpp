#include "coordinator/batch/request_body.h"

#include <cstdint>
#include <limits>

#include "coordinator/batch/json_fields.h"

namespace conveyor {
namespace {

using nlohmann::json;
using request_error_code::kInvalidField;

constexpr std::int64_t kInt32Max = std::numeric_limits<std::int32_t>::max();

std::string index_path(const std::string& path, std::size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

// Converting a double outside float's range is undefined behaviour; saturate to
// infinity instead, which validate() then refuses.
float to_float(double value) {
  constexpr double kMax = std::numeric_limits<float>::max();
  if (value > kMax) return std::numeric_limits<float>::infinity();
  if (value < -kMax) return -std::numeric_limits<float>::infinity();
  return static_cast<float>(value);
}

std::string read_role(const json& value, const std::string& path) {
  if (!value.is_string()) {
    reject(kInvalidField, path + " must be a string, got " + describe_json(value));
  }
  const auto& role = value.get_ref<const std::string&>();
  if (role == "system" || role == "user" || role == "assistant") return role;
  if (role == "developer") return "system";  // OpenAI's newer name for the system role
  reject(kInvalidField,
         path + " is " + quote_excerpt(role) + "; expected system, user, assistant or developer");
}

// A string, or text parts joined with "\n" as vLLM joins them.
std::string read_content(const json& value, const std::string& path) {
  if (value.is_string()) return value.get<std::string>();
  if (!value.is_array()) {
    reject(kInvalidField,
           path + " must be a string or an array of text parts, got " + describe_json(value));
  }
  std::string joined;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const std::string part_path = index_path(path, i);
    if (!value[i].is_object()) {
      reject(kInvalidField, part_path + " must be an object, got " + describe_json(value[i]));
    }
    const JsonFields part(value[i], part_path + ".");
    const std::string type = part.require_string("type");
    if (type != "text") {
      reject(kInvalidField,
             part.path("type") + " is " + quote_excerpt(type) + "; only text parts are supported");
    }
    if (i > 0) joined += '\n';
    joined += part.require_string("text");
  }
  return joined;
}

std::vector<ChatMessage> read_messages(const JsonFields& fields) {
  const json& value = fields.require("messages");
  const std::string path = fields.path("messages");
  if (!value.is_array()) {
    reject(kInvalidField, path + " must be an array of messages, got " + describe_json(value));
  }
  if (value.empty()) reject(kInvalidField, path + " is empty; a chat request needs a message");
  std::vector<ChatMessage> messages;
  messages.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    const std::string message_path = index_path(path, i);
    if (!value[i].is_object()) {
      reject(kInvalidField, message_path + " must be an object, got " + describe_json(value[i]));
    }
    const JsonFields message(value[i], message_path + ".");
    ChatMessage& out = messages.emplace_back();
    out.role = read_role(message.require("role"), message.path("role"));
    out.content = read_content(message.require("content"), message.path("content"));
  }
  return messages;
}

void read_prompt(const JsonFields& fields, BatchRequest& request) {
  const json& value = fields.require("prompt");
  const std::string path = fields.path("prompt");
  const json* text = nullptr;
  if (value.is_string()) {
    text = &value;
  } else if (value.is_array() && value.size() == 1 && value[0].is_string()) {
    text = &value[0];
  } else if (value.is_array() && !value.empty() && value[0].is_string()) {
    reject(kInvalidField, path + " holds " + std::to_string(value.size()) +
                              " prompts; a batch line carries one prompt");
  } else if (!value.is_array()) {
    reject(kInvalidField,
           path + " must be a string or an array of token ids, got " + describe_json(value));
  }
  if (text != nullptr) {
    if (text->get_ref<const std::string&>().empty()) reject(kInvalidField, path + " is empty");
    request.prompt = text->get<std::string>();
    return;
  }
  if (value.empty()) reject(kInvalidField, path + " is empty");
  std::vector<std::int32_t> ids;
  ids.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    ids.push_back(
        static_cast<std::int32_t>(read_integer(value[i], index_path(path, i), 0, kInt32Max)));
  }
  request.prompt_ids = std::move(ids);
}

// Checked here rather than left to validate(), so that messages name "stop" as the
// request spells it.
std::vector<std::string> read_stop(const JsonFields& fields) {
  const json* value = fields.find("stop");
  if (value == nullptr) return {};
  const std::string path = fields.path("stop");
  std::vector<std::string> stops;
  if (value->is_string()) {
    if (value->get_ref<const std::string&>().empty()) reject(kInvalidField, path + " is empty");
    stops.push_back(value->get<std::string>());
  } else if (value->is_array()) {
    if (value->size() > kMaxStopStrings) {
      reject(kInvalidField, path + " has " + std::to_string(value->size()) + " entries; at most " +
                                std::to_string(kMaxStopStrings) + " are allowed");
    }
    for (std::size_t i = 0; i < value->size(); ++i) {
      const json& stop = (*value)[i];
      if (!stop.is_string()) {
        reject(kInvalidField,
               index_path(path, i) + " must be a string, got " + describe_json(stop));
      }
      if (stop.get_ref<const std::string&>().empty()) {
        reject(kInvalidField, index_path(path, i) + " is empty");
      }
      stops.push_back(stop.get<std::string>());
    }
  } else {
    reject(kInvalidField,
           path + " must be a string or an array of strings, got " + describe_json(*value));
  }
  for (std::size_t i = 0; i < stops.size(); ++i) {
    if (stops[i].size() > kMaxStopStringBytes) {
      const std::string stop_path = value->is_array() ? index_path(path, i) : path;
      reject(kInvalidField, stop_path + " is " + std::to_string(stops[i].size()) +
                                " bytes long; at most " + std::to_string(kMaxStopStringBytes) +
                                " are allowed");
    }
  }
  return stops;
}

std::vector<std::int32_t> read_stop_token_ids(const JsonFields& fields) {
  const json* value = fields.find("stop_token_ids");
  if (value == nullptr) return {};
  const std::string path = fields.path("stop_token_ids");
  if (!value->is_array()) {
    reject(kInvalidField, path + " must be an array of token ids, got " + describe_json(*value));
  }
  if (value->size() > kMaxStopTokenIds) {
    reject(kInvalidField, path + " has " + std::to_string(value->size()) + " entries; at most " +
                              std::to_string(kMaxStopTokenIds) + " are allowed");
  }
  std::vector<std::int32_t> ids;
  for (std::size_t i = 0; i < value->size(); ++i) {
    ids.push_back(
        static_cast<std::int32_t>(read_integer((*value)[i], index_path(path, i), 0, kInt32Max)));
  }
  return ids;
}

std::int32_t read_max_tokens(const JsonFields& fields, const RequestLineLimits& limits) {
  const auto max_tokens = fields.integer("max_tokens", 1, kInt32Max);
  const auto max_completion_tokens = fields.integer("max_completion_tokens", 1, kInt32Max);
  if (max_tokens && max_completion_tokens && *max_tokens != *max_completion_tokens) {
    reject(kInvalidField, fields.path("max_tokens") + " (" + std::to_string(*max_tokens) +
                              ") and " + fields.path("max_completion_tokens") + " (" +
                              std::to_string(*max_completion_tokens) +
                              ") disagree; give one of them");
  }
  if (max_completion_tokens) return static_cast<std::int32_t>(*max_completion_tokens);
  if (max_tokens) return static_cast<std::int32_t>(*max_tokens);
  return limits.default_max_tokens;
}

void read_logprobs(const JsonFields& fields, Endpoint endpoint, SamplingParams& sampling) {
  if (endpoint == Endpoint::kChatCompletions) {
    sampling.logprobs = fields.boolean("logprobs").value_or(false);
    sampling.top_logprobs =
        static_cast<std::int32_t>(fields.integer("top_logprobs", 0, kInt32Max).value_or(0));
    return;
  }
  // The completions API spells it as one integer: the number of alternatives.
  if (const auto k = fields.integer("logprobs", 0, kInt32Max)) {
    sampling.logprobs = true;
    sampling.top_logprobs = static_cast<std::int32_t>(*k);
  }
}

// Fields whose meaning a batch cannot honour: ignoring them would return something
// other than what was asked for.
void refuse_unsupported(const JsonFields& fields) {
  if (fields.boolean("stream").value_or(false)) {
    reject(kInvalidField, fields.path("stream") + " is true; a batch request cannot stream");
  }
  if (fields.boolean("echo").value_or(false)) {
    reject(kInvalidField, fields.path("echo") + " is true; echoing the prompt is not supported");
  }
  // Constraints on the output that this engine does not apply: empty ones are harmless.
  for (const char* name : {"logit_bias", "tools", "functions"}) {
    const json* value = fields.find(name);
    if (value != nullptr && !value->empty()) {
      reject(kInvalidField, fields.path(name) + " is not supported");
    }
  }
  if (const json* format = fields.find("response_format")) {
    const bool plain_text = format->is_object() && format->contains("type") &&
                            format->at("type").is_string() && format->at("type") == "text";
    if (!plain_text) {
      reject(kInvalidField, fields.path("response_format") +
                                " is not supported beyond {\"type\": \"text\"}: structured "
                                "output is not enforced");
    }
  }
  if (const auto suffix = fields.string("suffix"); suffix && !suffix->empty()) {
    reject(kInvalidField, fields.path("suffix") + " is not supported");
  }
  if (const auto best_of = fields.integer("best_of", 1, kInt32Max); best_of && *best_of > 1) {
    reject(kInvalidField, fields.path("best_of") + " is not supported; use n");
  }
}

void read_sampling(const JsonFields& fields, Endpoint endpoint, const RequestLineLimits& limits,
                   BatchRequest& request) {
  SamplingParams& sampling = request.sampling;
  sampling.max_tokens = read_max_tokens(fields, limits);
  if (const auto v = fields.number("temperature")) sampling.temperature = to_float(*v);
  if (const auto v = fields.number("top_p")) sampling.top_p = to_float(*v);
  if (const auto v = fields.integer("top_k", -1, kInt32Max)) {
    sampling.top_k = static_cast<std::int32_t>(*v);
  }
  if (const auto v = fields.number("min_p")) sampling.min_p = to_float(*v);
  if (const auto v = fields.number("presence_penalty")) sampling.presence_penalty = to_float(*v);
  if (const auto v = fields.number("frequency_penalty")) sampling.frequency_penalty = to_float(*v);
  if (const auto v = fields.number("repetition_penalty")) {
    sampling.repetition_penalty = to_float(*v);
  }
  sampling.seed = fields.unsigned_integer("seed");
  sampling.stop_strings = read_stop(fields);
  sampling.stop_token_ids = read_stop_token_ids(fields);
  sampling.ignore_eos = fields.boolean("ignore_eos").value_or(false);
  read_logprobs(fields, endpoint, sampling);
  request.n = static_cast<std::int32_t>(fields.integer("n", 1, limits.max_n).value_or(1));

  const Status status = sampling.validate();
  if (!status.ok()) reject(kInvalidField, fields.path(status.message()));
}

}  // namespace

void read_request_body(const json& body, const std::string& prefix, const RequestLineLimits& limits,
                       BatchRequest& request) {
  const JsonFields fields(body, prefix);
  refuse_unsupported(fields);
  if (request.endpoint == Endpoint::kChatCompletions) {
    request.messages = read_messages(fields);
  } else {
    read_prompt(fields, request);
  }
  request.model = fields.string("model");
  read_sampling(fields, request.endpoint, limits, request);
}

}  // namespace conveyor
