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
  nodes_.emplace_back();
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
  const auto by_byte = [](const auto& c, unsigned char b) { return c.first < b; };
  std::int32_t node = 0;
  std::size_t at = 0;  // bytes of content matched so far
  while (at < content.size()) {
    const auto byte = static_cast<unsigned char>(content[at]);
    auto& children = nodes_[node].children;
    const auto it = std::lower_bound(children.begin(), children.end(), byte, by_byte);
    if (it == children.end() || it->first != byte) {
      // Nothing shares this continuation: one leaf holds the rest of the token.
      const auto leaf = static_cast<std::int32_t>(nodes_.size());
      children.insert(it, {byte, leaf});
      Node n;
      n.label_begin = labels_.size();
      n.label_length = content.size() - at;
      labels_.append(content.substr(at));
      nodes_.push_back(std::move(n));  // may reallocate: `children` is not used after this
      node = leaf;
      break;
    }
    const std::int32_t next = it->second;
    const std::string_view edge = label(next);
    const std::size_t limit = std::min(edge.size(), content.size() - at);
    std::size_t common = 1;
    while (common < limit && edge[common] == content[at + common]) {
      ++common;
    }
    if (common < edge.size()) {
      // The token ends or turns off inside this edge: split it at that point.
      const auto middle = static_cast<std::int32_t>(nodes_.size());
      it->second = middle;
      Node m;
      m.label_begin = nodes_[next].label_begin;
      m.label_length = common;
      m.children.push_back({static_cast<unsigned char>(edge[common]), next});
      nodes_[next].label_begin += common;
      nodes_[next].label_length -= common;
      nodes_.push_back(std::move(m));  // `it` and `children` are not used after this
      node = middle;
    } else {
      node = next;
    }
    at += common;
  }
  // The same text listed twice: the first listing stands.
  if (nodes_[node].entry >= 0) return;
  nodes_[node].entry = static_cast<std::int32_t>(entries_.size());
  entries_.push_back(entry);
  first_byte_[static_cast<unsigned char>(content.front())] = true;
}

std::int32_t SpecialTokenMatcher::child(std::int32_t node, unsigned char byte) const {
  const auto& children = nodes_[node].children;
  const auto it = std::lower_bound(children.begin(), children.end(), byte,
                                   [](const auto& c, unsigned char b) { return c.first < b; });
  return it == children.end() || it->first != byte ? -1 : it->second;
}

std::int32_t SpecialTokenMatcher::longest_at(std::string_view text, std::size_t pos,
                                             std::size_t special_limit, std::size_t& end) const {
  std::int32_t best = -1;
  std::int32_t node = 0;
  std::size_t at = pos;
  while (at < text.size()) {
    node = child(node, static_cast<unsigned char>(text[at]));
    if (node < 0) break;
    const std::string_view edge = label(node);
    if (text.substr(at, edge.size()) != edge) break;
    at += edge.size();
    const std::int32_t e = nodes_[node].entry;
    if (e >= 0 && (!entries_[e].special || at <= special_limit)) {
      best = e;
      end = at;
    }
  }
  return best;
}

void SpecialTokenMatcher::split(std::string_view text, bool parse_special,
                                std::vector<TextFragment>& out) const {
  const TextRange whole{0, text.size()};
  split(text, parse_special ? std::span<const TextRange>(&whole, 1) : std::span<const TextRange>(),
        out);
}

void SpecialTokenMatcher::split(std::string_view text, std::span<const TextRange> special_ranges,
                                std::vector<TextFragment>& out) const {
  std::size_t run_start = 0;
  std::size_t pos = 0;
  std::size_t range = 0;  // the first of special_ranges that ends after pos
  while (pos < text.size()) {
    if (!first_byte_[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    while (range < special_ranges.size() && special_ranges[range].end <= pos) {
      ++range;
    }
    const bool in_range = range < special_ranges.size() && special_ranges[range].begin <= pos;
    const std::size_t special_limit = in_range ? special_ranges[range].end : 0;
    std::size_t end = 0;
    const std::int32_t e = longest_at(text, pos, special_limit, end);
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
