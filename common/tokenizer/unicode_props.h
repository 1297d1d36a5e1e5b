// Unicode character properties the tokenizers need beyond what their regexes
// ask PCRE2 for directly.
#pragma once

namespace conveyor {

// A letter, a number or "_": a character that continues a word (single_word
// added tokens do not match inside words).
bool is_word_char(char32_t cp);

}  // namespace conveyor
