// The vocabulary and rules of a tokenizer, as found in a model file, before any
// tokenizer object is built from them. GGUF metadata (tokenizer.ggml.*) and
// Hugging Face tokenizer.json both load into this one plain struct.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace conveyor {

enum class TokenizerKind {
  kByteLevelBpe,      // GPT-2 style: bytes mapped to printable unicode, merges ("gpt2")
  kSentencePieceBpe,  // Llama-2 style: "▁" for spaces, scores, <0xNN> byte fallback ("llama")
};

// GGUF token types (llama.cpp's llama_token_type).
enum class TokenType : std::int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct TokenizerData {
  TokenizerKind kind = TokenizerKind::kByteLevelBpe;
  // Pre-tokenizer name as GGUF spells it in tokenizer.ggml.pre ("smollm", "llama-bpe",
  // "qwen2", "gpt2", "default"); tokenizer.json loaders map their config onto one.
  std::string pre = "default";
  std::vector<std::string> tokens;     // id -> token text
  std::vector<float> scores;           // SentencePiece scores (may be empty for BPE)
  std::vector<TokenType> token_types;  // may be empty: all normal
  std::vector<std::string> merges;     // "a b" pairs in rank order (byte-level BPE)

  std::int64_t bos_id = -1;
  std::int64_t eos_id = -1;
  std::int64_t unk_id = -1;
  std::int64_t pad_id = -1;
  std::vector<std::int64_t> eot_ids;  // extra end-of-turn ids (<|im_end|>, <|eot_id|>)
  bool add_bos = false;
  bool add_eos = false;

  std::string chat_template;  // Jinja source as shipped; used to pick a template family
};

}  // namespace conveyor
