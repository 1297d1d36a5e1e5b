#include "common/tokenizer/pre_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "common/status.h"

namespace conveyor {

const char* const kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

// The patterns as the Hugging Face tokenizer.json files spell them. llama.cpp
// rewrites (?i:...) into explicit case classes and drops the trailing \s+ for its
// own regex engine; PCRE2 runs the originals, and with UCP its \s is Unicode
// White_Space (U+0085 included), as in the Oniguruma engine tokenizers uses.
const char* const kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// tokenizers' Digits(individual_digits=true): every numeric character alone.
const char* const kDigitsRegex = R"(\p{N})";

struct CodeDeleter {
  void operator()(pcre2_code* c) const { pcre2_code_free(c); }
};
struct MatchDataDeleter {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};

// One match-data block per thread: encode runs on many threads at once, and a
// single ovector pair is all a split needs.
pcre2_match_data* thread_match_data() {
  thread_local std::unique_ptr<pcre2_match_data, MatchDataDeleter> data(
      pcre2_match_data_create(1, nullptr));
  return data.get();
}

}  // namespace

struct PreTokenizer::Stage {
  std::string source;
  std::unique_ptr<pcre2_code, CodeDeleter> code;
  bool jit = false;
};

std::vector<std::string> PreTokenizer::regexes_for(const std::string& name) {
  if (name == "gpt2" || name == "mpt" || name == "olmo" || name == "jais") return {kGpt2Regex};
  if (name == "llama-bpe" || name == "llama3" || name == "llama-v3" || name == "dbrx" ||
      name == "smaug-bpe") {
    return {kLlama3Regex};
  }
  if (name == "qwen2" || name == "stablelm2") return {kQwen2Regex};
  if (name == "smollm" || name == "starcoder" || name == "refact" || name == "command-r" ||
      name == "codeshell" || name == "exaone" || name == "minerva-7b") {
    return {kDigitsRegex, kGpt2Regex};
  }
  // No splitting: the whole text is one piece (a tokenizer.json without a regex).
  if (name == "none") return {};
  if (name == "default") {
    // llama.cpp's fallback for BPE vocabularies without a known pre-tokenizer.
    return {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2Regex, R"(\p{N}+)", "[0-9][0-9][0-9]"};
  }
  fail(ErrorCode::kUnsupported,
       "pre-tokenizer \"" + name +
           "\" is not supported (supported: gpt2, llama-bpe, qwen2, smollm, default and aliases)");
}

PreTokenizer::PreTokenizer(const std::vector<std::string>& regexes) {
  for (const std::string& source : regexes) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    auto stage = std::make_unique<Stage>();
    stage->source = source;
    stage->code.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(source.data()), source.size(),
                                    PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr));
    if (!stage->code) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      // The patterns come from model files (or are built in): one that does not
      // compile is a broken file, not a bad request.
      fail(ErrorCode::kMalformed, "pre-tokenizer regex \"" + source + "\" at offset " +
                                      std::to_string(offset) + ": " +
                                      reinterpret_cast<const char*>(message));
    }
    stage->jit = pcre2_jit_compile(stage->code.get(), PCRE2_JIT_COMPLETE) == 0;
    stages_.push_back(std::move(stage));
  }
}

PreTokenizer::~PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;

bool PreTokenizer::empty() const {
  return stages_.empty();
}

namespace {

// A pattern that backtracks too much on some input hits one of PCRE2's limits: the
// input is too costly for this regex, not a bug in the engine.
ErrorCode match_error_code(int rc) {
  switch (rc) {
    case PCRE2_ERROR_MATCHLIMIT:
    case PCRE2_ERROR_DEPTHLIMIT:
    case PCRE2_ERROR_HEAPLIMIT:
    case PCRE2_ERROR_JIT_STACKLIMIT:
    case PCRE2_ERROR_NOMEMORY:
      return ErrorCode::kResourceExhausted;
    default:
      return ErrorCode::kInternal;
  }
}

// Splits one piece by one stage, appending matches and gaps.
void split_stage(const pcre2_code* code, bool jit, std::string_view piece,
                 std::vector<std::string_view>& out) {
  pcre2_match_data* md = thread_match_data();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
  std::size_t start = 0;  // where the next gap or match begins
  std::size_t search = 0;
  while (search < piece.size()) {
    // The text was validated once up front, so PCRE2 need not re-check it on
    // every call; that check would make the loop quadratic.
    int rc =
        jit ? pcre2_jit_match(code, subject, piece.size(), search, PCRE2_NO_UTF_CHECK, md, nullptr)
            : -1;
    if (!jit || rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      rc = pcre2_match(code, subject, piece.size(), search, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md,
                       nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof(message));
      fail(match_error_code(rc),
           std::string("pre-tokenizer match failed: ") + reinterpret_cast<const char*>(message));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const std::size_t m_begin = ov[0];
    const std::size_t m_end = ov[1];
    if (m_end == m_begin) {
      // An empty match splits nothing; step over one code point and go on.
      ++search;
      while (search < piece.size() && (static_cast<unsigned char>(piece[search]) & 0xC0) == 0x80) {
        ++search;
      }
      continue;
    }
    if (m_begin > start) out.push_back(piece.substr(start, m_begin - start));
    out.push_back(piece.substr(m_begin, m_end - m_begin));
    start = m_end;
    search = m_end;
  }
  if (start < piece.size()) out.push_back(piece.substr(start));
}

}  // namespace

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& pieces) const {
  if (text.empty()) return;
  if (stages_.empty()) {
    pieces.push_back(text);
    return;
  }
  const std::size_t first = pieces.size();
  split_stage(stages_[0]->code.get(), stages_[0]->jit, text, pieces);
  std::vector<std::string_view> current;
  for (std::size_t s = 1; s < stages_.size(); ++s) {
    current.assign(pieces.begin() + static_cast<std::ptrdiff_t>(first), pieces.end());
    pieces.resize(first);
    for (std::string_view piece : current) {
      split_stage(stages_[s]->code.get(), stages_[s]->jit, piece, pieces);
    }
  }
}

}  // namespace conveyor
