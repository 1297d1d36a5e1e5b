#include "common/gguf/gguf_tokenizer.h"

#include <string>

#include "common/tokenizer/model_tokenizer.h"
#include "common/tokenizer/token_text.h"

namespace conveyor {
namespace {

constexpr const char* kModelKey = "tokenizer.ggml.model";
constexpr const char* kTokensKey = "tokenizer.ggml.tokens";

// Checks the array's length before decoding it, so that a lying array costs no
// memory beyond its own bytes.
void check_length(const GgufMetadata& meta, const char* key, std::size_t expected) {
  const GgufValue* v = meta.find(key);
  if (v == nullptr || v->type != GgufValueType::kArray) return;  // the typed get reports it
  if (v->count != expected) {
    fail(ErrorCode::kMalformed, std::string(key) + " has " + std::to_string(v->count) +
                                    " entries, but " + kTokensKey + " has " +
                                    std::to_string(expected));
  }
}

TokenizerData read_tokenizer(const GgufMetadata& meta, std::int64_t max_tokens) {
  const auto model = meta.get_string(kModelKey);
  if (!model || *model == "none") fail(ErrorCode::kNotFound, "the file carries no tokenizer");

  TokenizerData tok;
  if (*model == "gpt2") {
    tok.kind = TokenizerKind::kByteLevelBpe;
  } else if (*model == "llama") {
    tok.kind = TokenizerKind::kSentencePieceBpe;
  } else {
    fail(ErrorCode::kUnsupported,
         "tokenizer model '" + std::string(*model) + "' is not supported (gpt2 and llama are)");
  }
  if (const auto pre = meta.get_string("tokenizer.ggml.pre")) tok.pre = std::string(*pre);

  // The count first: a file that lies about its vocabulary costs nothing more.
  if (const GgufValue* v = meta.find(kTokensKey);
      v != nullptr && max_tokens >= 0 && v->count > static_cast<std::uint64_t>(max_tokens)) {
    fail(ErrorCode::kMalformed, too_many_tokens_message(v->count, max_tokens));
  }
  const auto tokens = meta.get_string_array(kTokensKey);
  if (!tokens || tokens->empty()) {
    fail(ErrorCode::kMalformed, std::string(kTokensKey) + " is missing or empty");
  }
  const std::size_t n = tokens->size();
  for (std::size_t i = 0; i < n; ++i) {
    check_token_length(static_cast<std::int64_t>(i), (*tokens)[i]);
  }
  tok.tokens.assign(tokens->begin(), tokens->end());

  check_length(meta, "tokenizer.ggml.scores", n);
  if (auto scores = meta.get_float_array("tokenizer.ggml.scores")) tok.scores = std::move(*scores);

  check_length(meta, "tokenizer.ggml.token_type", n);
  if (const auto types = meta.get_int_array("tokenizer.ggml.token_type")) {
    tok.token_types.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      const std::int64_t t = (*types)[i];
      if (t < static_cast<std::int64_t>(TokenType::kUndefined) ||
          t > static_cast<std::int64_t>(TokenType::kByte)) {
        fail(ErrorCode::kMalformed, "tokenizer.ggml.token_type of token " + std::to_string(i) +
                                        " is " + std::to_string(t) + " (0 to 6 are valid)");
      }
      tok.token_types.push_back(static_cast<TokenType>(t));
      if (tok.kind == TokenizerKind::kSentencePieceBpe &&
          tok.token_types.back() == TokenType::kByte && parse_byte_token(tok.tokens[i]) < 0) {
        fail(ErrorCode::kMalformed, "byte token " + std::to_string(i) + " is spelled '" +
                                        tok.tokens[i] + "', expected <0xNN>");
      }
    }
  }

  if (const auto merges = meta.get_string_array("tokenizer.ggml.merges")) {
    tok.merges.reserve(merges->size());
    for (std::size_t i = 0; i < merges->size(); ++i) {
      const std::string_view m = (*merges)[i];
      std::string_view left;
      std::string_view right;
      if (!split_merge(m, left, right)) {
        fail(ErrorCode::kMalformed, "tokenizer.ggml.merges entry " + std::to_string(i) + " '" +
                                        std::string(m) +
                                        "' is not two tokens separated by a space");
      }
      tok.merges.emplace_back(m);
    }
  } else if (tok.kind == TokenizerKind::kByteLevelBpe) {
    fail(ErrorCode::kMalformed, "a gpt2 tokenizer needs tokenizer.ggml.merges");
  }

  const auto n_tokens = static_cast<std::int64_t>(n);
  tok.bos_id = meta.get_token_id("tokenizer.ggml.bos_token_id", n_tokens);
  tok.eos_id = meta.get_token_id("tokenizer.ggml.eos_token_id", n_tokens);
  tok.unk_id = meta.get_token_id("tokenizer.ggml.unknown_token_id", n_tokens);
  tok.pad_id = meta.get_token_id("tokenizer.ggml.padding_token_id", n_tokens);
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    const std::int64_t id = meta.get_token_id(key, n_tokens);
    if (id >= 0) tok.eot_ids.push_back(id);
  }
  // llama.cpp's defaults when the file does not say: SentencePiece models start
  // with BOS, byte-level BPE models do not.
  tok.add_bos = meta.get_bool("tokenizer.ggml.add_bos_token")
                    .value_or(tok.kind == TokenizerKind::kSentencePieceBpe);
  tok.add_eos = meta.get_bool("tokenizer.ggml.add_eos_token").value_or(false);
  if (const auto prefix = meta.get_bool("tokenizer.ggml.add_space_prefix")) {
    tok.add_space_prefix = *prefix;
  }
  if (const auto tmpl = meta.get_string("tokenizer.chat_template")) {
    tok.chat_template = std::string(*tmpl);
  }
  return tok;
}

}  // namespace

bool gguf_has_tokenizer(const GgufMetadata& metadata) {
  const GgufValue* v = metadata.find(kModelKey);
  return v != nullptr && !(v->type == GgufValueType::kString && v->as_string_view() == "none");
}

Expected<TokenizerData> read_gguf_tokenizer(const GgufMetadata& metadata, std::int64_t max_tokens) {
  return to_expected([&] { return read_tokenizer(metadata, max_tokens); });
}

}  // namespace conveyor
