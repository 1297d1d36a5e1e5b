#include "coordinator/request_preparer.h"

#include <algorithm>
#include <cctype>
#include <variant>

#include "common/tokenizer/chat_encoding.h"

namespace conveyor {

RequestPreparer::RequestPreparer(IntakeOptions options, std::shared_ptr<const Tokenizer> tokenizer,
                                 std::optional<ChatTemplate> chat)
    : options_(std::move(options)), tokenizer_(std::move(tokenizer)), chat_(std::move(chat)) {}

Expected<std::vector<std::int32_t>> RequestPreparer::tokenize(const BatchRequest& r) const {
  if (r.prompt_ids) return *r.prompt_ids;
  if (tokenizer_ == nullptr) {
    return Status(ErrorCode::kInvalidArgument,
                  "this model has no tokenizer: give the prompt as token ids");
  }
  if (r.endpoint == Endpoint::kCompletions) {
    return tokenizer_->encode(r.prompt, /*add_special=*/true, /*parse_special=*/false);
  }
  if (!chat_) {
    return Status(ErrorCode::kUnsupported, "this model has no chat template: use /v1/completions");
  }
  // Turn markers become special tokens; message text stays text even where it spells
  // one, so a message cannot open a turn of its own.
  return encode_chat(*tokenizer_, *chat_, r.messages, /*add_generation_prompt=*/true);
}

Expected<EngineRequest> RequestPreparer::prepare(const BatchRequest& r) const {
  const auto same_name = [&](const std::string& name) {
    return name.size() == r.model->size() &&
           std::equal(name.begin(), name.end(), r.model->begin(), [](char a, char b) {
             return std::tolower(static_cast<unsigned char>(a)) ==
                    std::tolower(static_cast<unsigned char>(b));
           });
  };
  if (options_.check_model_name && r.model && !options_.model_names.empty() &&
      std::none_of(options_.model_names.begin(), options_.model_names.end(), same_name)) {
    return Status(ErrorCode::kNotFound, "body.model '" + *r.model + "' is not the model served ('" +
                                            options_.model_names.front() + "')");
  }
  // The prompt's length and ids and the parameters against the vocabulary are the
  // scheduler actor's to check (SchedulerActor::validate), for every caller alike.
  Expected<std::vector<std::int32_t>> prompt = tokenize(r);
  if (!prompt.ok()) return prompt.status();
  EngineRequest e;
  e.prompt = std::move(prompt).value();
  e.sampling = r.sampling;
  e.n = r.n;
  return e;
}

JudgedLine RequestPreparer::judge(std::string_view line, std::uint64_t length,
                                  std::int64_t line_number, std::unordered_set<std::string>& seen,
                                  const std::function<bool(const std::string&)>& skip) const {
  ParsedLine parsed = length > options_.limits.max_line_bytes
                          ? ParsedLine(line_too_long(line_number, length, options_.limits))
                          : parse_request_line(line, line_number, options_.limits);
  JudgedLine out;
  if (std::holds_alternative<BlankLine>(parsed)) {
    out.blank = true;
    return out;
  }
  auto* error = std::get_if<RequestError>(&parsed);
  std::string& id = error != nullptr ? error->custom_id : std::get<BatchRequest>(parsed).custom_id;
  const bool duplicate = !seen.insert(id).second;
  const std::string original = id;
  if (duplicate) id += "#line-" + std::to_string(line_number);
  out.custom_id = id;
  if (skip && skip(id)) {
    out.skipped = true;
    return out;
  }
  if (error != nullptr) {
    out.error = std::move(*error);
    return out;
  }
  auto request = std::make_shared<BatchRequest>(std::move(std::get<BatchRequest>(parsed)));
  if (duplicate) {
    out.error = line_error(request->line_number, request->custom_id, "duplicate_custom_id",
                           "custom_id '" + original + "' appeared on an earlier line");
    return out;
  }
  Expected<EngineRequest> prepared = prepare(*request);
  if (!prepared.ok()) {
    const Status& s = prepared.status();
    const char* code = s.code() == ErrorCode::kNotFound ? "model_not_found" : "invalid_request";
    out.error = line_error(request->line_number, request->custom_id, code, s.message());
    return out;
  }
  out.request = std::move(prepared).value();
  out.request->origin = std::move(request);
  return out;
}

}  // namespace conveyor
