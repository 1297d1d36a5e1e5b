#include "coordinator/intake.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <variant>

#include "common/tokenizer/chat_encoding.h"
#include "coordinator/batch/line_reader.h"

namespace conveyor {

FileIntake::FileIntake(std::filesystem::path input, IntakeOptions options,
                       std::shared_ptr<const Tokenizer> tokenizer, std::optional<ChatTemplate> chat,
                       std::unordered_set<std::string> finished)
    : input_(std::move(input)),
      options_(std::move(options)),
      tokenizer_(std::move(tokenizer)),
      chat_(std::move(chat)),
      finished_(std::move(finished)) {}

FileIntake::~FileIntake() {
  if (thread_.joinable()) thread_.join();
}

void FileIntake::start(Channel<EngineRequest>& requests, ErrorCallback on_error) {
  thread_ = std::thread([this, &requests, on_error = std::move(on_error)] {
    try {
      read_all(requests, on_error);
    } catch (const Error& e) {
      status_ = e.status();
    } catch (const std::exception& e) {
      status_ = Status(ErrorCode::kInternal, e.what());
    }
    done_ = true;
    requests.close();
  });
}

Status FileIntake::join() {
  if (thread_.joinable()) thread_.join();
  return status_;
}

Expected<std::vector<std::int32_t>> FileIntake::tokenize(const BatchRequest& r) const {
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

Expected<EngineRequest> FileIntake::prepare(const BatchRequest& r) const {
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

void FileIntake::read_all(Channel<EngineRequest>& requests, const ErrorCallback& on_error) {
  std::FILE* file = std::fopen(input_.c_str(), "rb");
  if (file == nullptr) {
    status_ =
        Status(ErrorCode::kIo, "cannot open " + input_.string() + ": " + std::strerror(errno));
    return;
  }
  LineReader reader(file, options_.limits.max_line_bytes);
  std::int64_t line_number = 0;
  std::uint64_t key = 0;
  while (auto line = reader.next()) {
    ++line_number;
    ParsedLine parsed;
    if (line->length > options_.limits.max_line_bytes) {
      parsed = line_too_long(line_number, line->length, options_.limits);
    } else {
      parsed = parse_request_line(line->text, line_number, options_.limits);
    }
    if (std::holds_alternative<BlankLine>(parsed)) continue;
    // Every line gets exactly one terminal line, under its custom_id; a repeated
    // custom_id's line is answered under "<custom_id>#line-<N>", so that the first
    // keeps its id and callers can still join results on custom_id.
    auto* error = std::get_if<RequestError>(&parsed);
    std::string& id =
        error != nullptr ? error->custom_id : std::get<BatchRequest>(parsed).custom_id;
    const bool duplicate = !seen_.insert(id).second;
    const std::string original = id;
    if (duplicate) id += "#line-" + std::to_string(line_number);
    if (finished_.count(id) != 0) {
      ++skipped_;  // finished in an earlier run
      continue;
    }
    ++lines_;
    if (error != nullptr) {
      on_error(std::move(*error));
      continue;
    }
    auto request = std::make_shared<BatchRequest>(std::move(std::get<BatchRequest>(parsed)));
    if (duplicate) {
      on_error(line_error(request->line_number, request->custom_id, "duplicate_custom_id",
                          "custom_id '" + original + "' appeared on an earlier line"));
      continue;
    }
    Expected<EngineRequest> prepared = prepare(*request);
    if (!prepared.ok()) {
      const Status& s = prepared.status();
      const char* code = s.code() == ErrorCode::kNotFound ? "model_not_found" : "invalid_request";
      on_error(line_error(request->line_number, request->custom_id, code, s.message()));
      continue;
    }
    EngineRequest e = std::move(prepared).value();
    e.key = key++;
    e.submitted = SteadyClock::now();
    e.origin = std::move(request);
    if (!requests.send(std::move(e))) break;  // the job is stopping
  }
  const bool read_error = reader.error();
  std::fclose(file);
  if (read_error) status_ = Status(ErrorCode::kIo, "error reading " + input_.string());
}

}  // namespace conveyor
