// `conveyor compress`: a model (GGUF, Hugging Face or Conveyor directory) in, a Conveyor
// model directory out, its blocks' linear weights quantised (int8, int4, fp8),
// optionally pruned, int4 optionally with activation-aware scales from calibration
// text, or mixed (each block's precision from its measured sensitivity); with --eval, the quality
// it cost (perplexity, KL, top-1) in DIR/report.json.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/model_loading.h"
#include "common/config/size_parse.h"
#include "common/conveyor_model/json_fields.h"
#include "common/conveyor_model/model_writer.h"
#include "common/loader/open_model.h"
#include "compress/calibration.h"
#include "compress/compress_model.h"
#include "compress/mixed_precision.h"
#include "compress/quality_report.h"
#include "worker/platform/backend_factory.h"

namespace conveyor::cli {
namespace {

struct CompressCliOptions {
  std::string model;
  std::string out;
  std::string method;
  std::optional<std::string> calib;
  std::int64_t calib_tokens = 512;
  std::int64_t group = 128;
  std::vector<std::string> prune;  // one mode at most (given twice: refused)
  bool no_awq = false;
  std::optional<std::string> eval;
  std::int64_t eval_tokens = 0;
  std::int64_t eval_window = 512;
  std::optional<std::string> target_size;
  std::optional<double> target_kl;
  bool force = false;
  int threads = 0;
  std::string backend = "auto";
};

// A directory to write into: absent, empty, or (with --force) anything but the source.
void check_output(const CompressCliOptions& o, const std::string& source_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(o.out, ec) && fs::equivalent(o.out, source_path, ec)) {
    fail(ErrorCode::kInvalidArgument, "--out " + o.out + " is the model being compressed");
  }
  if (fs::exists(o.out, ec) && !fs::is_directory(o.out, ec)) {
    fail(ErrorCode::kInvalidArgument, "--out " + o.out + " is a file, not a directory");
  }
  if (fs::is_directory(o.out, ec) && !fs::is_empty(o.out, ec) && !o.force) {
    fail(ErrorCode::kInvalidArgument,
         "--out " + o.out + " is not empty; give --force to write into it anyway");
  }
}

// " down a=0.35 (-41%)": the alpha chosen and how much it cut the layer's output error.
std::string awq_text(const nlohmann::json& summary, const char* key, const char* label) {
  if (!summary.contains(key)) return "";
  const nlohmann::json& awq = summary.at(key);
  std::ostringstream out;
  out << " " << label << " a=" << std::setprecision(2) << awq.at("alpha").get<double>();
  const double plain = awq.at("plain_output_mse").get<double>();
  if (plain > 0) {
    out << " (" << std::showpos << std::fixed << std::setprecision(0)
        << 100.0 * (awq.at("output_mse").get<double>() / plain - 1.0) << "%)";
  }
  return out.str();
}

void print_layer(const compress::LayerReport& r) {
  std::string line =
      "[compress] layer " + std::to_string(r.layer + 1) + "/" + std::to_string(r.layers);
  std::ostringstream seconds;
  seconds << std::fixed << std::setprecision(2) << r.seconds;
  line += " | " + seconds.str() + " s";
  const std::string awq = awq_text(r.summary, "awq_qkv", "q/k/v") +
                          awq_text(r.summary, "awq_gate_up", "gate/up") +
                          awq_text(r.summary, "awq_down", "down");
  if (!awq.empty()) line += " | awq" + awq;
  if (r.summary.contains("sparsity")) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(1) << 100.0 * r.summary.at("sparsity").get<double>();
    line += " | sparsity " + s.str() + "%";
  }
  std::fprintf(stderr, "%s\n", line.c_str());
}

void print_sensitivity(const compress::BlockSensitivity& s, double seconds) {
  std::fprintf(
      stderr, "[compress] sensitivity of layer %lld: KL int8 %.3g, int4 %.3g nats/token | %.2f s\n",
      static_cast<long long>(s.layer + 1), s.kl_int8, s.kl_int4, seconds);
}

// "[compress] layers: removed blocks 3, 7 of 12 (similarity 0.98, 0.97)".
void print_layer_pruning(const nlohmann::json& pruning) {
  const auto removed = pruning.at("removed_blocks").get<std::vector<std::int64_t>>();
  const auto similarity = pruning.at("block_similarity").get<std::vector<double>>();
  std::ostringstream blocks;
  std::ostringstream values;
  values << std::setprecision(4);
  for (std::size_t i = 0; i < removed.size(); ++i) {
    blocks << (i > 0 ? ", " : "") << removed[i];
    values << (i > 0 ? ", " : "") << similarity[static_cast<std::size_t>(removed[i])];
  }
  std::fprintf(stderr,
               "[compress] layers: removed blocks %s of %zu (input/output cosine %s); the "
               "rest renumbered\n",
               blocks.str().c_str(), similarity.size(), values.str().c_str());
}

// "f16 x3, int8 x10, int4 x17" and the blocks in order: "4448 8888 ...".
void print_choice(const compress::MixedResult& m) {
  int counts[3] = {0, 0, 0};
  std::string blocks;
  for (const compress::Method method : m.methods) {
    const int i = method == compress::Method::kF16 ? 0 : method == compress::Method::kInt8 ? 1 : 2;
    ++counts[i];
    blocks += "f84"[i];
  }
  std::fprintf(stderr,
               "[compress] mixed: f16 x%d, int8 x%d, int4 x%d (per layer: %s; f=f16 8=int8 "
               "4=int4) | KL estimate %.4g nats/token (sum of the blocks') | written %d time%s\n",
               counts[0], counts[1], counts[2], blocks.c_str(), m.kl_estimate, m.writes,
               m.writes == 1 ? "" : "s");
}

// The formats the blocks' linears take, as one line: "q4_1 (rows of 576 are ...)".
std::string formats_text(const compress::CompressOptions& options, const ModelSpec& spec) {
  if (options.method == compress::Method::kMixed) {
    return "each block f16, int8 or int4 by its measured sensitivity";
  }
  std::string text;
  for (const std::int64_t k : {spec.hidden_size, spec.q_dim(), spec.intermediate_size}) {
    const compress::LinearFormat f = compress::linear_format(options, k);
    std::string item =
        std::string(dtype_name(f.dtype)) + (f.reason.empty() ? "" : " (" + f.reason + ")");
    if (text.find(item) == std::string::npos) text += (text.empty() ? "" : ", ") + item;
  }
  return text;
}

int run_compress(const CompressCliOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  compress::CompressOptions options;
  const std::optional<compress::Method> method = compress::method_from_name(o.method);
  if (!method) {
    fail(ErrorCode::kInvalidArgument, "--method '" + o.method + "': int8, int4, fp8, f16 or mixed");
  }
  options.method = *method;
  options.group = o.group;
  options.awq = !o.no_awq;
  if (o.prune.size() > 1) {
    fail(ErrorCode::kInvalidArgument,
         "--prune given " + std::to_string(o.prune.size()) +
             " times: one pruning mode per run (layers:N combines with any --method, not with "
             "magnitude, wanda or 2:4)");
  }
  options.prune = compress::parse_prune_spec(o.prune.empty() ? "none" : o.prune.front());
  options.threads = o.threads;
  compress::check_options(options);
  if (options.prune.mode == compress::PruneMode::kWanda && !o.calib) {
    fail(ErrorCode::kInvalidArgument, "--prune wanda weighs weights by activations: give --calib");
  }
  if (options.prune.mode == compress::PruneMode::kLayers && !o.calib) {
    fail(ErrorCode::kInvalidArgument,
         "--prune layers:N compares each block's input and output hidden states on "
         "calibration text: give --calib");
  }
  const bool mixed = options.method == compress::Method::kMixed;
  compress::MixedTarget target;
  if (o.target_size) {
    const Expected<std::uint64_t> bytes = parse_size(*o.target_size);
    if (!bytes.ok()) {
      fail(ErrorCode::kInvalidArgument,
           "--target-size '" + *o.target_size + "': " + bytes.status().message());
    }
    target.bytes = bytes.value();
  }
  target.kl = o.target_kl;
  if (mixed && (!o.calib || target.bytes.has_value() == target.kl.has_value())) {
    fail(ErrorCode::kInvalidArgument,
         "--method mixed measures each block's sensitivity on --calib text and needs one "
         "target: --target-size SIZE or --target-kl NATS");
  }
  if (!mixed && (target.bytes || target.kl)) {
    fail(ErrorCode::kInvalidArgument, "--target-size and --target-kl are for --method mixed");
  }
  if (target.kl && !(*target.kl >= 0)) {
    fail(ErrorCode::kInvalidArgument, "--target-kl: a mean KL in nats, 0 or more");
  }

  const std::unique_ptr<ModelSource> source = open_model_or_throw(o.model);
  check_output(o, source->path());
  compress::check_layer_pruning(options.prune, source->spec().num_layers, o.calib.has_value());
  const std::uint64_t bytes_in = bytes_on_disk(source->path());
  std::vector<std::int32_t> calibration;
  if (o.calib) {
    calibration = compress::text_tokens(*source, compress::read_text_file(*o.calib, "--calib"),
                                        o.calib_tokens, "--calib");
  }
  // Read and tokenised before any work, so that a bad --eval fails at once.
  std::vector<std::int32_t> eval_tokens;
  if (o.eval) {
    eval_tokens = compress::text_tokens(
        *source, compress::read_text_file(*o.eval, "--eval"),
        o.eval_tokens > 0 ? o.eval_tokens : std::numeric_limits<std::int64_t>::max(), "--eval");
  }

  const ModelSpec& spec = source->spec();
  std::fprintf(stderr, "[compress] %s (%s, %s) -> %s\n", source->path().c_str(),
               source->format().c_str(), human_bytes(static_cast<double>(bytes_in)).c_str(),
               o.out.c_str());
  std::fprintf(stderr, "[compress] method %s: %s | prune %s | calibration %s\n", o.method.c_str(),
               formats_text(options, spec).c_str(), options.prune.to_string().c_str(),
               o.calib ? (std::to_string(calibration.size()) + " tokens of " + *o.calib +
                          (options.method == compress::Method::kInt4
                               ? (options.awq ? ", activation-aware scales" : ", no AWQ")
                               : ""))
                             .c_str()
                       : "none (plain min/max)");

  nlohmann::json producer = {
      {"tool", "conveyor compress"},
      {"source",
       {{"path", bytes_to_json(source->path())},
        {"format", source->format()},
        {"bytes", bytes_in}}},
      {"calibration", o.calib ? nlohmann::json(bytes_to_json(*o.calib)) : nlohmann::json()}};
  std::optional<compress::MixedResult> mixed_result;
  if (mixed) {
    mixed_result = compress::compress_mixed(*source, o.out, options, target, calibration, producer,
                                            print_sensitivity, print_layer);
    print_choice(*mixed_result);
  }
  const compress::CompressResult result =
      mixed ? mixed_result->written
            : compress::compress_model(*source, o.out, options, calibration, producer, print_layer);
  if (!result.layer_pruning.is_null()) print_layer_pruning(result.layer_pruning);
  std::fprintf(stderr, "[compress] wrote %s: %s on disk (source %s, x%.2f) in %.1f s\n",
               o.out.c_str(), human_bytes(static_cast<double>(result.bytes)).c_str(),
               human_bytes(static_cast<double>(bytes_in)).c_str(),
               bytes_in > 0 ? static_cast<double>(result.bytes) / static_cast<double>(bytes_in) : 0,
               result.seconds);

  nlohmann::json report = {{"source", bytes_to_json(source->path())},
                           {"compressed", bytes_to_json(o.out)},
                           {"method", o.method},
                           {"prune", options.prune.to_string()},
                           {"calibration_tokens", result.calibration_tokens},
                           {"bytes_source", bytes_in},
                           {"bytes", result.bytes},
                           {"compress_seconds", result.seconds}};
  if (mixed_result) report["mixed"] = mixed_result->json;
  if (!result.layer_pruning.is_null()) report["layer_pruning"] = result.layer_pruning;
  if (o.eval) {
    Expected<std::unique_ptr<ModelSource>> compressed = open_model_source(o.out);
    if (!compressed.ok()) throw Error(compressed.status().code(), compressed.status().message());
    BackendRequest request = parse_device(o.backend);
    request.threads = o.threads;
    const std::unique_ptr<Backend> backend = make_backend(request);
    std::fprintf(stderr, "[compress] scoring both models on %zu tokens of %s (%s)...\n",
                 eval_tokens.size(), o.eval->c_str(), backend->name().c_str());
    nlohmann::json quality =
        compress::quality_report(*backend, *source, **compressed, eval_tokens, o.eval_window);
    quality["text"] = bytes_to_json(*o.eval);
    std::fprintf(stderr,
                 "[compress] perplexity %.4f -> %.4f | KL(source || compressed) %.6f "
                 "nats/token | top-1 agreement %.2f%% | %lld tokens\n",
                 quality.at("perplexity_source").get<double>(),
                 quality.at("perplexity").get<double>(), quality.at("kl_mean").get<double>(),
                 100.0 * quality.at("top1_agreement").get<double>(),
                 static_cast<long long>(quality.at("tokens_scored").get<std::int64_t>()));
    report["quality"] = std::move(quality);
  }
  report["seconds"] =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string report_path = (std::filesystem::path(o.out) / "report.json").string();
  std::ofstream out(report_path);
  out << report.dump(1) << "\n";
  if (!out) fail(ErrorCode::kIo, "writing " + report_path + " failed");
  std::fprintf(stderr, "[compress] report: %s\n", report_path.c_str());
  return 0;
}

}  // namespace

void register_compress(CLI::App& app, CommandResult& result) {
  CLI::App* cmd = app.add_subcommand(
      "compress", "Quantise (and prune) a model into a Conveyor model directory");
  auto o = std::make_shared<CompressCliOptions>();
  cmd->add_option("-m,--model", o->model, "alias, GGUF file, Hugging Face or Conveyor directory")
      ->required()
      ->envname("CONVEYOR_MODEL");
  cmd->add_option("--out", o->out, "the directory to write")->required();
  cmd->add_option("--method", o->method,
                  "int8 (per-row, W8A16), int4 (group-wise, W4A16), fp8 (E4M3 per row, W8A8), "
                  "f16 (with --prune 2:4: stored 2:4-sparse, s24_f16) or mixed (each block f16, "
                  "int8 or int4 by measured sensitivity; --calib and "
                  "--target-size or --target-kl)")
      ->required();
  cmd->add_option("--calib", o->calib,
                  "calibration text: activation-aware int4 scales, Wanda and layers:N pruning "
                  "(default: none)");
  cmd->add_option("--calib-tokens", o->calib_tokens, "calibration tokens used")
      ->capture_default_str();
  cmd->add_option("--group", o->group,
                  "int4 group: 128 (q4_g128; q4_1 where rows are no multiple of 128) or 32 (q4_1)")
      ->capture_default_str();
  cmd->add_option("--prune", o->prune,
                  "magnitude:S, wanda:S (S in [0, 1)) or 2:4, stored dense; or layers:N (remove "
                  "the N blocks whose output is most like their input on --calib; default: none)")
      ->allow_extra_args(false);
  cmd->add_option("--target-size", o->target_size,
                  "mixed: model.safetensors + conveyor-model.json at most this (110MiB, 1.5GB)");
  cmd->add_option("--target-kl", o->target_kl,
                  "mixed: the sum of the blocks' measured KLs at most this, nats/token");
  cmd->add_flag("--no-awq", o->no_awq, "int4 with calibration: plain min/max groups");
  cmd->add_option("--eval", o->eval,
                  "held-out text: perplexity, KL and top-1 agreement against the source in "
                  "DIR/report.json");
  cmd->add_option("--eval-tokens", o->eval_tokens, "score the text's first N tokens (0: all)")
      ->capture_default_str();
  cmd->add_option("--eval-window", o->eval_window, "tokens per scored window")
      ->capture_default_str();
  cmd->add_flag("--force", o->force, "write into a directory that is not empty");
  cmd->add_option("-t,--threads", o->threads, "CPU threads (default: all cores)")
      ->envname("CONVEYOR_THREADS");
  cmd->add_option("--backend", o->backend, "--eval: auto, cpu, cuda or cuda:N")
      ->envname("CONVEYOR_BACKEND");
  cmd->callback([&result, o] { result = [o] { return run_compress(*o); }; });
}

}  // namespace conveyor::cli
