#include "common/tokenizer/unicode_props.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <memory>
#include <string>

#include "common/tokenizer/utf8.h"

namespace conveyor {
namespace {

// PCRE2 carries the Unicode tables already; one compiled class is cheaper to
// keep right than a copy of the letter and number ranges.
struct WordClass {
  pcre2_code* code = nullptr;
  WordClass() {
    int error = 0;
    PCRE2_SIZE offset = 0;
    const std::string pattern = R"([\p{L}\p{N}_])";
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                         PCRE2_UTF | PCRE2_UCP | PCRE2_ANCHORED, &error, &offset, nullptr);
  }
  ~WordClass() { pcre2_code_free(code); }
  WordClass(const WordClass&) = delete;
  WordClass& operator=(const WordClass&) = delete;
};

struct MatchDataDeleter {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};

}  // namespace

bool is_word_char(char32_t cp) {
  if (cp < 0x80) {
    return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9') ||
           cp == '_';
  }
  static const WordClass word_class;
  if (word_class.code == nullptr) return false;
  thread_local std::unique_ptr<pcre2_match_data, MatchDataDeleter> md(
      pcre2_match_data_create(1, nullptr));
  std::string s;
  utf8::append(s, cp);
  return pcre2_match(word_class.code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0, 0,
                     md.get(), nullptr) >= 0;
}

}  // namespace conveyor
