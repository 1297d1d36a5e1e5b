// Pre-tokenization: cutting text into the pieces BPE merges within. Each stage is
// a regex whose matches and the gaps between them both become pieces (the
// tokenizers library's Split with "Isolated" behaviour); stages apply in order,
// each to every piece of the previous one.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace conveyor {

class PreTokenizer {
 public:
  // The stage regexes for a GGUF tokenizer.ggml.pre name ("gpt2", "llama-bpe",
  // "qwen2", "smollm", "default" and their aliases; "none" for no splitting).
  // Throws Error(kUnsupported).
  static std::vector<std::string> regexes_for(const std::string& name);

  // Compiles the stages (PCRE2, UTF + UCP, JIT when available). Throws
  // Error(kMalformed) naming the regex that does not compile.
  explicit PreTokenizer(const std::vector<std::string>& regexes);
  ~PreTokenizer();
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Appends the pieces of text (valid UTF-8) to pieces; they view into text and
  // cover it exactly, in order. No stages: the whole text is one piece. Throws
  // Error(kResourceExhausted) when a regex backtracks past PCRE2's match, depth
  // or heap limits (or the JIT stack) on this text.
  void split(std::string_view text, std::vector<std::string_view>& pieces) const;

  bool empty() const;

 private:
  struct Stage;
  std::vector<std::unique_ptr<Stage>> stages_;
};

// The GPT-2 pattern, also the one ByteLevel(use_regex=true) applies.
extern const char* const kGpt2Regex;

}  // namespace conveyor
