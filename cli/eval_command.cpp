// `conveyor eval`: how well a model predicts a held-out text (perplexity) and, against
// a reference model with the same tokenizer, how far its next-token distributions are
// from the reference's (mean KL, top-1 agreement): the quality side of compression.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/device_options.h"
#include "cli/model_loading.h"
#include "common/tokenizer/tokenizer.h"
#include "coordinator/progress.h"
#include "worker/platform/backend_factory.h"
#include "worker/scoring/score_metrics.h"
#include "worker/scoring/text_scoring.h"
#include "worker/scoring/token_scorer.h"
#include "worker/scoring/vocabulary_match.h"

namespace conveyor::cli {
namespace {

constexpr std::int64_t kDefaultWindow = 512;
// Without a terminal, a progress line at most this often: enough to see a long run move
// without filling a log.
constexpr double kProgressLineSeconds = 5.0;

struct EvalOptions {
  std::string model;
  std::string text;
  std::optional<std::string> reference;
  std::optional<std::int64_t> window;
  std::int64_t max_tokens = 0;  // 0: the whole text
  bool json = false;
  bool quiet = false;
  DeviceOptions device;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorCode::kNotFound, "--text: cannot open " + path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) fail(ErrorCode::kIo, "--text: reading " + path + " failed");
  if (text.empty()) fail(ErrorCode::kInvalidArgument, "--text: " + path + " is empty");
  return text;
}

std::unique_ptr<Tokenizer> tokenizer_of(const ModelSource& source, const std::string& flag) {
  if (!source.tokenizer().has_value()) {
    const Status& why = source.tokenizer_status();
    fail(ErrorCode::kUnsupported, flag + " " + source.path() +
                                      ": no tokenizer to read the text with" +
                                      (why.ok() ? "" : " (" + why.message() + ")"));
  }
  return std::make_unique<Tokenizer>(*source.tokenizer());
}

// The window asked for, or the default cut to the shortest context of the models.
std::int64_t choose_window(const EvalOptions& o, const ModelSpec& model,
                           const ModelSpec* reference) {
  std::int64_t context = model.max_positions;
  if (reference != nullptr && reference->max_positions > 0) {
    context = context > 0 ? std::min(context, reference->max_positions) : reference->max_positions;
  }
  if (!o.window) return context > 0 ? std::min(kDefaultWindow, context) : kDefaultWindow;
  if (*o.window < 2) fail(ErrorCode::kInvalidArgument, "--window: at least 2 tokens");
  if (context > 0 && *o.window > context) {
    fail(ErrorCode::kInvalidArgument, "--window " + std::to_string(*o.window) +
                                          " is longer than the context (" +
                                          std::to_string(context) + " tokens)");
  }
  return *o.window;
}

// Windows done so far on stderr: redrawn on a terminal, a line every few seconds
// otherwise.
class EvalProgress {
 public:
  EvalProgress(std::int64_t windows, std::int64_t tokens_per_window, bool enabled)
      : total_(windows),
        tokens_per_window_(tokens_per_window),
        enabled_(enabled && windows > 1),
        terminal_(::isatty(STDERR_FILENO) == 1),
        start_(std::chrono::steady_clock::now()),
        last_(start_) {}

  void update(std::int64_t done) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    const bool last = done == total_;
    if (!terminal_ && !last &&
        std::chrono::duration<double>(now - last_).count() < kProgressLineSeconds) {
      return;
    }
    last_ = now;
    const double elapsed = seconds_since(start_);
    // Windows are all full but the last, so windows done measure the work done.
    const double rate = elapsed > 0 ? static_cast<double>(done * tokens_per_window_) / elapsed : 0;
    const double eta =
        done > 0 ? elapsed * static_cast<double>(total_ - done) / static_cast<double>(done) : 0;
    std::fprintf(stderr, "%s[eval] windows %lld/%lld | %.0f tok/s | ETA %s%s",
                 terminal_ ? "\r" : "", static_cast<long long>(done),
                 static_cast<long long>(total_), rate, format_duration(eta).c_str(),
                 terminal_ && !last ? "" : "\n");
    std::fflush(stderr);
  }

 private:
  std::int64_t total_;
  std::int64_t tokens_per_window_;
  bool enabled_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_;
};

int run_eval(const EvalOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  if (o.max_tokens < 0) fail(ErrorCode::kInvalidArgument, "--max-tokens: 0 (all) or more");
  const std::string text = read_text(o.text);
  const auto source = open_model_or_throw(o.model);
  const std::unique_ptr<Tokenizer> tokenizer = tokenizer_of(*source, "--model");
  std::unique_ptr<ModelSource> reference_source;
  std::unique_ptr<Tokenizer> reference_tokenizer;
  if (o.reference) {
    reference_source = open_model_or_throw(*o.reference);
    reference_tokenizer = tokenizer_of(*reference_source, "--reference");
    // Checked before any weight loads: a mismatch is a mistake, not a measurement.
    if (Status s = same_vocabulary(*tokenizer, *reference_tokenizer); !s.ok()) {
      fail(ErrorCode::kInvalidArgument,
           "--reference " + *o.reference + " cannot be compared with " + o.model + ": " +
               s.message() + "; a reference must share the model's tokenizer");
    }
    if (reference_source->spec().vocab_size != source->spec().vocab_size) {
      fail(ErrorCode::kInvalidArgument, "--reference " + *o.reference + " has " +
                                            std::to_string(reference_source->spec().vocab_size) +
                                            " output rows, " + o.model + " " +
                                            std::to_string(source->spec().vocab_size));
    }
  }
  const std::int64_t window =
      choose_window(o, source->spec(), reference_source ? &reference_source->spec() : nullptr);

  // BOS (or not) as the tokenizer's config says; special-token text in the file stays text.
  std::vector<std::int32_t> tokens = tokenizer->encode(text, /*add_special=*/true,
                                                       /*parse_special=*/false);
  const auto text_tokens = static_cast<std::int64_t>(tokens.size());
  // The same vocabulary may still split a text otherwise (other merges or pre-tokenizer
  // rules): the positions compared must be the same tokens in both.
  if (reference_tokenizer &&
      reference_tokenizer->encode(text, /*add_special=*/true, /*parse_special=*/false) != tokens) {
    fail(ErrorCode::kInvalidArgument, "--reference " + *o.reference + " splits " + o.text +
                                          " into other tokens than " + o.model +
                                          "; a reference must share the model's tokenizer");
  }
  if (o.max_tokens > 0 && text_tokens > o.max_tokens)
    tokens.resize(static_cast<std::size_t>(o.max_tokens));
  const std::vector<TokenWindow> windows =
      cut_windows(static_cast<std::int64_t>(tokens.size()), window);
  if (windows.empty()) {
    fail(ErrorCode::kInvalidArgument, "--text " + o.text + " holds " +
                                          std::to_string(tokens.size()) +
                                          " token(s): nothing to predict");
  }

  const std::unique_ptr<Backend> backend = make_backend(o.device.request());
  TokenScorerOptions scorer_options;
  scorer_options.window = window;
  TokenScorer model(*backend, *source, scorer_options);
  std::unique_ptr<TokenScorer> reference;
  if (reference_source)
    reference = std::make_unique<TokenScorer>(*backend, *reference_source, scorer_options);
  const double load_seconds = seconds_since(start);

  PerplexityAccumulator perplexity;
  PerplexityAccumulator reference_perplexity;
  DivergenceAccumulator divergence;
  EvalProgress progress(static_cast<std::int64_t>(windows.size()), window - 1, !o.quiet);
  const auto score_start = std::chrono::steady_clock::now();
  score_windows(
      tokens, windows, model, reference.get(),
      [&](const Prediction& p) {
        const NormalizedLogits m = normalize_logits(p.logits);
        perplexity.add(m, p.target);
        if (p.reference.empty()) return;
        const NormalizedLogits r = normalize_logits(p.reference);
        reference_perplexity.add(r, p.target);
        divergence.add(r, m);
      },
      [&](std::int64_t done) { progress.update(done); });
  const double score_seconds = seconds_since(score_start);
  const double seconds = seconds_since(start);

  if (!o.quiet) {
    std::fprintf(stderr,
                 "[eval] %s on %s: %lld tokens scored in %zu windows of %lld (text: %lld "
                 "tokens)\n"
                 "[eval] perplexity %.4f (mean NLL %.5f nats/token)\n",
                 source->path().c_str(), o.text.c_str(), static_cast<long long>(perplexity.count()),
                 windows.size(), static_cast<long long>(window),
                 static_cast<long long>(text_tokens), perplexity.perplexity(),
                 perplexity.mean_nll());
    if (reference) {
      std::fprintf(stderr,
                   "[eval] reference %s: perplexity %.4f | KL(reference || model) %.6f "
                   "nats/token | top-1 agreement %.2f%%\n",
                   reference_source->path().c_str(), reference_perplexity.perplexity(),
                   divergence.mean_kl(), 100.0 * divergence.top1_agreement());
    }
    std::fprintf(stderr, "[eval] %s | load %.2f s | scored in %.2f s: %.1f tok/s\n",
                 backend->name().c_str(), load_seconds, score_seconds,
                 score_seconds > 0 ? static_cast<double>(perplexity.count()) / score_seconds : 0);
  }
  if (o.json) {
    nlohmann::json out = {{"model", source->path()},
                          {"text", o.text},
                          {"text_tokens", text_tokens},
                          {"tokens_scored", perplexity.count()},
                          {"windows", windows.size()},
                          {"window", window},
                          {"perplexity", perplexity.perplexity()},
                          {"mean_nll", perplexity.mean_nll()}};
    if (reference) {
      out["reference"] = reference_source->path();
      out["reference_perplexity"] = reference_perplexity.perplexity();
      out["kl_mean"] = divergence.mean_kl();
      out["top1_agreement"] = divergence.top1_agreement();
    }
    out["backend"] = backend->name();
    out["seconds"] = seconds;
    std::cout << out.dump() << std::endl;
  }
  return 0;
}

}  // namespace

void register_eval(CLI::App& app, CommandResult& result) {
  CLI::App* cmd = app.add_subcommand(
      "eval", "Perplexity on a text; KL and top-1 agreement against a reference");
  auto o = std::make_shared<EvalOptions>();
  cmd->add_option("-m,--model", o->model, "alias, GGUF file or Hugging Face directory")
      ->required()
      ->envname("CONVEYOR_MODEL");
  cmd->add_option("--text", o->text, "the held-out text (UTF-8)")->required();
  cmd->add_option("--reference", o->reference,
                  "a model with the same tokenizer: mean KL(reference || model), top-1 agreement "
                  "and its own perplexity");
  cmd->add_option("--window", o->window,
                  "tokens per window, each scored from an empty context (default: 512, at most "
                  "the context)");
  cmd->add_option("--max-tokens", o->max_tokens, "score the text's first N tokens (0: all)")
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "one JSON object with the results on stdout");
  cmd->add_flag("-q,--quiet", o->quiet, "no progress or summary on stderr");
  o->device.add_to(*cmd);
  cmd->callback([&result, o] { result = [o] { return run_eval(*o); }; });
}

}  // namespace conveyor::cli
