#include "common/tokenizer/special_tokens.h"

#include <algorithm>

#include "common/status.h"
#include "common/tokenizer/unicode_props.h"
#include "common/tokenizer/utf8.h"

namespace conveyor {
namespace {

// Start of the code point that ends just before pos.
std::size_t previous_char(std::string_view text, std::size_t pos) {
  std::size_t p = pos - 1;
  while (p > 0 && (static_cast<unsigned char>(text[p]) & 0xC0) == 0x80) {
    --p;
  }
  return p;
}

char32_t char_at(std::string_view text, std::size_t pos) {
  return utf8::decode(text, pos);
}

}  // namespace

SpecialTokenMatcher::SpecialTokenMatcher(const Vocab& vocab, const TokenizerData& data) {
  trie_.emplace_back();
  if (!data.added_tokens.empty()) {
    for (const AddedToken& t : data.added_tokens) {
      if (!vocab.contains(t.id)) {
        fail(ErrorCode::kMalformed, "added token \"" + t.content + "\" has id " +
                                        std::to_string(t.id) + ", outside the vocabulary");
      }
      if (t.content.empty()) continue;
      insert(t.content,
             {static_cast<std::int32_t>(t.id), t.special, t.lstrip, t.rstrip, t.single_word});
    }
    return;
  }
  for (std::int32_t id = 0; id < vocab.size(); ++id) {
    const TokenType type = vocab.type(id);
    const bool special = type == TokenType::kControl || type == TokenType::kUnknown;
    if (!special && type != TokenType::kUserDefined) continue;
    if (vocab.text(id).empty()) continue;
    insert(vocab.text(id), {id, special, false, false, false});
  }
}

void SpecialTokenMatcher::insert(std::string_view content, const Entry& entry) {
  std::int32_t node = 0;
  for (char c : content) {
    const auto byte = static_cast<unsigned char>(c);
    auto& children = trie_[node].children;
    auto it = std::lower_bound(children.begin(), children.end(), byte,
                               [](const auto& child, unsigned char b) { return child.first < b; });
    if (it != children.end() && it->first == byte) {
      node = it->second;
      continue;
    }
    const auto next = static_cast<std::int32_t>(trie_.size());
    children.insert(it, {byte, next});
    trie_.emplace_back();  // may reallocate: `children` is not used after this
    node = next;
  }
  // The same text listed twice: the first listing stands.
  if (trie_[node].entry >= 0) return;
  trie_[node].entry = static_cast<std::int32_t>(entries_.size());
  entries_.push_back(entry);
  first_byte_[static_cast<unsigned char>(content.front())] = true;
}

std::int32_t SpecialTokenMatcher::longest_at(std::string_view text, std::size_t pos,
                                             bool parse_special, std::size_t& end) const {
  std::int32_t best = -1;
  std::int32_t node = 0;
  for (std::size_t i = pos; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const auto& children = trie_[node].children;
    auto it = std::lower_bound(children.begin(), children.end(), byte,
                               [](const auto& child, unsigned char b) { return child.first < b; });
    if (it == children.end() || it->first != byte) break;
    node = it->second;
    const std::int32_t e = trie_[node].entry;
    if (e >= 0 && (parse_special || !entries_[e].special)) {
      best = e;
      end = i + 1;
    }
  }
  return best;
}

void SpecialTokenMatcher::split(std::string_view text, bool parse_special,
                                std::vector<TextFragment>& out) const {
  std::size_t run_start = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (!first_byte_[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    std::size_t end = 0;
    const std::int32_t e = longest_at(text, pos, parse_special, end);
    if (e < 0) {
      ++pos;
      continue;
    }
    const Entry& entry = entries_[e];
    if (entry.single_word) {
      // Not glued to a word on either side.
      const bool word_before = pos > 0 && is_word_char(char_at(text, previous_char(text, pos)));
      const bool word_after = end < text.size() && is_word_char(char_at(text, end));
      if (word_before || word_after) {
        ++pos;
        continue;
      }
    }
    std::size_t start = pos;
    if (entry.lstrip) {
      while (start > run_start) {
        const std::size_t p = previous_char(text, start);
        if (!utf8::is_whitespace(char_at(text, p))) break;
        start = p;
      }
    }
    if (entry.rstrip) {
      while (end < text.size()) {
        std::size_t p = end;
        if (!utf8::is_whitespace(utf8::decode(text, p))) break;
        end = p;
      }
    }
    if (start > run_start) out.push_back({run_start, start - run_start, -1});
    out.push_back({start, end - start, entry.id});
    run_start = end;
    pos = end;
  }
  if (run_start < text.size()) out.push_back({run_start, text.size() - run_start, -1});
}

}  // namespace conveyor
