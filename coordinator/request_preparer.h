// RequestPreparer: how the coordinator's intakes (a batch file, a producer's chunks)
// judge one input line: parse it, answer a repeated custom_id under
// "<custom_id>#line-<N>" (so every line gets exactly one terminal line and the first
// keeps its id), check body.model, and tokenise the prompt with the model's chat
// template. The result is a request for the scheduler or the error line to write.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "common/tokenizer/chat_template.h"
#include "common/tokenizer/tokenizer.h"
#include "coordinator/batch/request_line.h"
#include "coordinator/scheduler_actor.h"

namespace conveyor {

struct IntakeOptions {
  RequestLineLimits limits;
  // The names body.model may give (the served name, the --model argument, the file
  // name), compared without regard to case; an absent body.model is always accepted.
  std::vector<std::string> model_names;
  bool check_model_name = true;
};

struct JudgedLine {
  bool blank = false;
  std::string custom_id;  // as answered: "<id>#line-<N>" for a repeated id
  bool skipped = false;   // `skip` said so: nothing else is set
  std::optional<RequestError> error;
  std::optional<EngineRequest> request;  // origin set; key and submitted are the caller's
};

class RequestPreparer {
 public:
  // `tokenizer` and `chat` may be null: then only prompts given as token ids are
  // accepted.
  RequestPreparer(IntakeOptions options, std::shared_ptr<const Tokenizer> tokenizer,
                  std::optional<ChatTemplate> chat);

  const IntakeOptions& options() const { return options_; }

  // `line` is the line's text (at most limits.max_line_bytes kept) and `length` its
  // full length. `seen` holds the custom_ids of the job's earlier lines and gains
  // this one. `skip(custom_id)`: true for a line finished in an earlier run, which is
  // then neither tokenised nor answered.
  JudgedLine judge(std::string_view line, std::uint64_t length, std::int64_t line_number,
                   std::unordered_set<std::string>& seen,
                   const std::function<bool(const std::string&)>& skip = {}) const;

  // A parsed request -> an engine request, or why it cannot run.
  Expected<EngineRequest> prepare(const BatchRequest& request) const;

 private:
  Expected<std::vector<std::int32_t>> tokenize(const BatchRequest& request) const;

  IntakeOptions options_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::optional<ChatTemplate> chat_;
};

}  // namespace conveyor
