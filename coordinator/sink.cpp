#include "coordinator/sink.h"

#include <ctime>

namespace conveyor {

RequestError engine_error(const BatchRequest& request, const Status& status) {
  const char* code = status.code() == ErrorCode::kOutOfRange        ? "context_length_exceeded"
                     : status.code() == ErrorCode::kInvalidArgument ? "invalid_request"
                                                                    : "internal_error";
  return line_error(request.line_number, request.custom_id, code, status.message());
}

Expected<std::unique_ptr<Sink>> Sink::open(SinkOptions options) {
  Expected<JsonlAppender> output = JsonlAppender::open(options.output);
  if (!output.ok()) return output.status();
  Expected<JsonlAppender> errors = JsonlAppender::open(options.errors);
  if (!errors.ok()) return errors.status();
  return std::unique_ptr<Sink>(
      new Sink(std::move(options), std::move(output).value(), std::move(errors).value()));
}

Sink::Sink(SinkOptions options, JsonlAppender output, JsonlAppender errors)
    : options_(std::move(options)), output_(std::move(output)), errors_file_(std::move(errors)) {}

Sink::~Sink() {
  (void)stop();
}

void Sink::start(std::function<void()> on_line) {
  thread_ = std::thread([this, on_line = std::move(on_line)] {
    while (auto item = inbox_.receive()) {
      if (!status().ok()) continue;  // drain without writing
      try {
        write(*item);
        if (on_line) on_line();
      } catch (const std::exception& e) {
        std::lock_guard lock(status_mutex_);
        if (status_.ok()) status_ = Status(ErrorCode::kInternal, std::string("sink: ") + e.what());
      }
    }
  });
}

Status Sink::stop() {
  inbox_.close();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(status_mutex_);
  if (status_.ok()) status_ = output_.sync();
  if (status_.ok()) status_ = errors_file_.sync();
  return status_;
}

Status Sink::status() const {
  std::lock_guard lock(status_mutex_);
  return status_;
}

void Sink::write(const SinkItem& item) {
  Status written;
  if (const auto* error = std::get_if<RequestError>(&item)) {
    written = errors_file_.append(format_error_line(*error));
    if (written.ok()) ++errors_;
  } else {
    const EngineResult& result = std::get<EngineResult>(item);
    const TerminalLine terminal = terminal_line(result, options_.meta, options_.tokenizer.get());
    written = (terminal.error ? errors_file_ : output_).append(terminal.line);
    if (written.ok() && terminal.error) ++errors_;
    if (written.ok() && !terminal.error) {
      ++results_;
      for (const EngineChoice& c : result.choices)
        generated_tokens_ += static_cast<std::int64_t>(c.tokens.size());
    }
  }
  if (!written.ok()) {
    std::lock_guard lock(status_mutex_);
    status_ = written;
  }
}

TerminalLine terminal_line(const EngineResult& result, const ResultMeta& meta,
                           const Tokenizer* tokenizer) {
  const BatchRequest& request = *result.origin;
  if (!result.status.ok()) return {true, format_error_line(engine_error(request, result.status))};
  const TokenText token_text = [tokenizer](std::int32_t id) {
    // The token's own bytes, part of a character or with SentencePiece's space
    // marker as a space: what the log-prob "bytes" must carry.
    return tokenizer != nullptr ? tokenizer->token_to_piece(id) : std::to_string(id);
  };
  ResultMeta stamped = meta;
  stamped.created = static_cast<std::int64_t>(std::time(nullptr));
  return {false,
          format_result_line(request, result.prompt_tokens, result.choices, stamped, token_text)};
}

}  // namespace conveyor
