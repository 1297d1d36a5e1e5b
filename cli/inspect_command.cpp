#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "cli/commands.h"
#include "cli/model_loading.h"
#include "common/config/size_parse.h"
#include "common/model_source.h"
#include "common/tokenizer/chat_template.h"
#include "common/tokenizer/tokenizer.h"

namespace conveyor::cli {
namespace {

std::string rope_description(const ModelSpec& s) {
  std::ostringstream out;
  out << "theta " << s.rope_theta << ", "
      << (s.rope_pairing == RopePairing::kInterleaved ? "interleaved pairs" : "half-split pairs");
  switch (s.rope_scaling.type) {
    case RopeScalingType::kNone:
      break;
    case RopeScalingType::kLinear:
      out << ", linear scaling x" << s.rope_scaling.factor;
      break;
    case RopeScalingType::kLlama3:
      out << ", llama3 scaling x" << s.rope_scaling.factor << " (low "
          << s.rope_scaling.low_freq_factor << ", high " << s.rope_scaling.high_freq_factor
          << ", original context " << s.rope_scaling.original_max_positions << ")";
      break;
  }
  return out.str();
}

std::string chat_format(const TokenizerData& tokenizer) {
  const Expected<ChatTemplate> chat = chat_template_for(tokenizer);
  if (!chat.ok()) return "none (" + chat.status().message() + ")";
  std::string text = chat_family_name(chat->family);
  if (!chat->default_system_prompt.empty()) {
    text += ", default system prompt \"" + chat->default_system_prompt + "\"";
  }
  return text;
}

void print_model(const ModelSource& model, bool list_tensors) {
  const ModelSpec& s = model.spec();
  std::cout << "model:        " << model.path() << "\n"
            << "format:       " << model.format() << "\n"
            << "architecture: " << s.architecture << (s.name.empty() ? "" : " (" + s.name + ")")
            << "\n"
            << "layers:       " << s.num_layers << "\n"
            << "hidden:       " << s.hidden_size << ", ffn " << s.intermediate_size << "\n"
            << "attention:    " << s.num_heads << " heads, " << s.num_kv_heads << " kv heads ("
            << (s.num_kv_heads == s.num_heads ? "MHA" : "GQA") << "), head_dim " << s.head_dim
            << (s.qkv_bias ? ", qkv bias" : "")
            << (s.sliding_window > 0 ? ", sliding window " + std::to_string(s.sliding_window) : "")
            << "\n"
            << "rope:         " << rope_description(s) << "\n"
            << "context:      " << s.max_positions << "\n"
            << "vocab:        " << s.vocab_size << (s.tie_embeddings ? ", tied embeddings" : "")
            << "\n"
            << "rms_norm_eps: " << s.rms_norm_eps << "\n";

  std::map<std::string, std::pair<int, std::uint64_t>> by_type;  // dtype -> count, bytes
  std::int64_t parameters = 0;
  std::uint64_t bytes = 0;
  for (const TensorRef& t : model.tensors()) {
    auto& entry = by_type[std::string(dtype_name(t.dtype))];
    entry.first += 1;
    entry.second += t.bytes.size() + t.scales.size();
    parameters += t.elements();
    bytes += t.bytes.size() + t.scales.size();
  }
  std::cout << "parameters:   " << std::fixed << std::setprecision(1)
            << static_cast<double>(parameters) / 1e6 << "M in " << model.tensors().size()
            << " tensors, " << human_bytes(static_cast<double>(bytes)) << "\n"
            << "tensor types:";
  for (const auto& [name, entry] : by_type) {
    std::cout << " " << name << " x" << entry.first << " ("
              << human_bytes(static_cast<double>(entry.second)) << ")";
  }
  std::cout << "\n";

  if (const auto& tok = model.tokenizer(); tok.has_value()) {
    std::cout << "tokenizer:    "
              << (tok->kind == TokenizerKind::kByteLevelBpe ? "byte-level BPE"
                                                            : "SentencePiece BPE")
              << ", pre-tokenizer " << tok->pre << ", " << tok->tokens.size() << " tokens, "
              << tok->merges.size() << " merges, bos " << tok->bos_id << ", eos " << tok->eos_id
              << "\n";
    // Building it checks what loading alone does not (merges naming unknown tokens,
    // malformed byte tokens), so that inspect reports what generate would hit.
    const auto built = Tokenizer::create(*tok);
    if (!built.ok()) std::cout << "tokenizer error: " << built.status().to_string() << "\n";
    std::cout << "chat format:  " << chat_format(*tok) << "\n";
  } else {
    const Status& why = model.tokenizer_status();
    std::cout << "tokenizer:    none" << (why.ok() ? "" : " (" + why.to_string() + ")")
              << "; use --prompt-ids with generate\n";
  }

  if (list_tensors) {
    std::cout << "\n";
    for (const TensorRef& t : model.tensors()) {
      std::cout << std::left << std::setw(32) << t.name << " " << std::setw(6)
                << dtype_name(t.dtype) << " [";
      for (std::size_t i = 0; i < t.shape.size(); ++i)
        std::cout << (i ? ", " : "") << t.shape[i];
      std::cout << "]\n";
    }
  }
}

}  // namespace

void register_inspect(CLI::App& app, CommandResult& result) {
  CLI::App* cmd =
      app.add_subcommand("inspect", "Print a model's architecture, tensors and tokenizer");
  auto model = std::make_shared<std::string>();
  auto list_tensors = std::make_shared<bool>(false);
  cmd->add_option("model", *model, "alias, GGUF file or Hugging Face directory")->required();
  cmd->add_flag("--tensors", *list_tensors, "list every tensor with its type and shape");
  cmd->callback([&result, model, list_tensors] {
    result = [model, list_tensors] {
      const auto source = open_model_or_throw(*model);
      print_model(*source, *list_tensors);
      return 0;
    };
  });
}

}  // namespace conveyor::cli
