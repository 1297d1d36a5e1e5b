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

// A token matched verbatim in the raw text before pre-tokenization (tokenizer.json's
// "added_tokens"). GGUF files carry no such list; for them the control and
// user-defined token types stand in for it.
struct AddedToken {
  std::int64_t id = -1;
  std::string content;
  bool special = true;       // false: matched even when the caller does not parse specials
  bool lstrip = false;       // the match swallows whitespace to its left
  bool rstrip = false;       // ... and to its right
  bool single_word = false;  // only matched when not inside a word
};

// Where a SentencePiece-style tokenizer puts its "▁" prefix when add_space_prefix is set.
// Text is cut into runs at special tokens first; the rules differ in which runs get one.
enum class SpacePrefixRule {
  kEveryRun,             // llama.cpp and HF's legacy Prepend normalizer: every run, always
  kEveryRunUnlessSpace,  // HF Metaspace "always": every run not already starting with a space
  kFirstRunUnlessSpace,  // HF Metaspace "first": only a run at the very start of the text
};

struct TokenizerData {
  TokenizerKind kind = TokenizerKind::kByteLevelBpe;
  // Pre-tokenizer name as GGUF spells it in tokenizer.ggml.pre ("smollm", "llama-bpe",
  // "qwen2", "gpt2", "default"). The tokenizer.json loader names the one its regexes
  // match, or "custom" ("none" without any) and relies on pre_regexes.
  std::string pre = "default";
  std::vector<std::string> tokens;     // id -> token text
  std::vector<float> scores;           // SentencePiece scores (may be empty for BPE)
  std::vector<TokenType> token_types;  // may be empty: all normal
  std::vector<std::string> merges;     // "a b" pairs in rank order (byte-level BPE)
  // A SentencePiece-style tokenizer merges by score when scores are present (GGUF,
  // as SentencePiece itself does) and by merge rank otherwise (tokenizer.json, as
  // the tokenizers library does).

  std::int64_t bos_id = -1;
  std::int64_t eos_id = -1;
  std::int64_t unk_id = -1;
  std::int64_t pad_id = -1;
  std::vector<std::int64_t> eot_ids;  // extra end-of-turn ids (<|im_end|>, <|eot_id|>)
  bool add_bos = false;
  bool add_eos = false;

  std::string chat_template;  // Jinja source as shipped; used to pick a template family

  // ---- rules beyond what GGUF states; the defaults reproduce llama.cpp ----

  // Tokens matched in raw text, with their matching flags. Empty: every control,
  // user-defined and unknown token is matched, none strips whitespace.
  std::vector<AddedToken> added_tokens;
  // Split regexes (tokenizers' Split with "Isolated" behaviour) applied in order,
  // each to every piece the previous one produced. Non-empty: used instead of `pre`.
  std::vector<std::string> pre_regexes;
  // A pre-token that is itself in the vocabulary is emitted whole, merges skipped
  // (tokenizers' BPE ignore_merges; Llama-3 sets it).
  bool ignore_merges = false;
  // Unicode NFC normalisation of the text between special tokens (Qwen2's
  // tokenizer.json; implied for a GGUF "qwen2" pre-tokenizer).
  bool normalize_nfc = false;

  // SentencePiece-style only: prefix "▁" (tokenizer.ggml.add_space_prefix).
  bool add_space_prefix = true;
  SpacePrefixRule space_prefix_rule = SpacePrefixRule::kEveryRun;
  // SentencePiece-style only: characters missing from the vocabulary become <0xNN>
  // byte tokens; otherwise the unknown token.
  bool byte_fallback = true;
};

}  // namespace conveyor
