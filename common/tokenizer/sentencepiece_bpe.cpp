#include "common/tokenizer/sentencepiece_bpe.h"

#include <algorithm>

#include "common/status.h"
#include "common/tokenizer/byte_level_bpe.h"
#include "common/tokenizer/token_text.h"
#include "common/tokenizer/utf8.h"

namespace conveyor {
namespace {

std::size_t char_length(std::string_view s, std::size_t pos) {
  const utf8::Sequence seq = utf8::examine(s, pos);
  return std::max<std::size_t>(1, seq.length);
}

}  // namespace

SentencePieceBpe::SentencePieceBpe(const Vocab& vocab, const TokenizerData& data)
    : vocab_(vocab),
      pre_(data.pre_regexes),
      add_space_prefix_(data.add_space_prefix),
      prefix_rule_(data.space_prefix_rule),
      byte_fallback_(data.byte_fallback),
      unk_id_(static_cast<std::int32_t>(data.unk_id)) {
  by_score_ = vocab.has_scores();
  if (!by_score_) {
    if (data.merges.empty()) {
      fail(ErrorCode::kMalformed,
           "SentencePiece-style tokenizer has neither scores nor merges to merge by");
    }
    load_merges(vocab, data.merges, merges_);
  }
}

void SentencePieceBpe::encode(std::string_view run, bool at_text_start,
                              std::vector<std::int32_t>& out) const {
  if (run.empty()) return;
  // Metaspace looks after spaces became "▁": a run that starts with a space or
  // with a literal "▁" counts as prefixed already.
  const bool starts_spaced = run.front() == ' ' || run.substr(0, kSpaceMark.size()) == kSpaceMark;
  bool prefix = false;
  if (add_space_prefix_) {
    switch (prefix_rule_) {
      case SpacePrefixRule::kEveryRun:
        prefix = true;
        break;
      case SpacePrefixRule::kEveryRunUnlessSpace:
        prefix = !starts_spaced;
        break;
      case SpacePrefixRule::kFirstRunUnlessSpace:
        prefix = at_text_start && !starts_spaced;
        break;
    }
  }
  thread_local std::string text;
  text.clear();
  if (prefix) text.append(kSpaceMark);
  for (char c : run) {
    if (c == ' ') {
      text.append(kSpaceMark);
    } else {
      text.push_back(c);
    }
  }
  thread_local std::vector<std::string_view> pieces;
  pieces.clear();
  pre_.split(text, pieces);
  for (std::string_view piece : pieces) {
    if (by_score_) {
      encode_by_score(piece, out);
    } else {
      encode_by_rank(piece, out);
    }
  }
}

bool SentencePieceBpe::mergeable(std::int32_t id) const {
  // SentencePiece keeps control and unknown pieces out of its merge dictionary.
  return id >= 0 && !vocab_.is_control(id);
}

void SentencePieceBpe::encode_by_score(std::string_view text,
                                       std::vector<std::int32_t>& out) const {
  // llama.cpp's llm_tokenizer_spm, which follows SentencePiece's bpe_model.cc:
  // symbols are spans of text, and the adjacent pair whose concatenation is the
  // highest-scoring token merges first, the leftmost among equal scores.
  struct Symbol {
    std::size_t start;
    std::size_t length;  // 0: merged into its left neighbour
    std::int32_t prev;
    std::int32_t next;
  };
  struct Bigram {
    float score;
    std::int32_t left;
    std::int32_t right;
    std::size_t length;
  };
  const auto lower = [](const Bigram& a, const Bigram& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Bigram> heap;
  symbols.clear();
  heap.clear();
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t n = std::min(char_length(text, pos), text.size() - pos);
    const auto index = static_cast<std::int32_t>(symbols.size());
    symbols.push_back({pos, n, index - 1, pos + n < text.size() ? index + 1 : -1});
    pos += n;
  }
  const auto try_add = [&](std::int32_t left, std::int32_t right) {
    if (left < 0 || right < 0) return;
    const std::size_t length = symbols[left].length + symbols[right].length;
    const std::int32_t id = vocab_.find(text.substr(symbols[left].start, length));
    if (!mergeable(id)) return;
    heap.push_back({vocab_.score(id), left, right, length});
    std::push_heap(heap.begin(), heap.end(), lower);
  };
  for (std::size_t i = 1; i < symbols.size(); ++i) {
    try_add(static_cast<std::int32_t>(i - 1), static_cast<std::int32_t>(i));
  }
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), lower);
    const Bigram top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[top.left];
    Symbol& right = symbols[top.right];
    // Stale when either side has merged since: the lengths no longer add up.
    if (left.length == 0 || right.length == 0 || left.length + right.length != top.length) {
      continue;
    }
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.left;
    try_add(left.prev, top.left);
    try_add(top.left, left.next);
  }
  for (std::int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) {
    emit_symbol(text.substr(symbols[i].start, symbols[i].length), out);
  }
}

void SentencePieceBpe::encode_by_rank(std::string_view text, std::vector<std::int32_t>& out) const {
  // tokenizers' BPE with byte_fallback: characters become symbols (or their
  // bytes' <0xNN> tokens), then merges apply by rank.
  thread_local std::vector<std::int32_t> symbols;
  symbols.clear();
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t n = std::min(char_length(text, pos), text.size() - pos);
    emit_symbol(text.substr(pos, n), symbols);
    pos += n;
  }
  merges_.apply(symbols);
  out.insert(out.end(), symbols.begin(), symbols.end());
}

void SentencePieceBpe::emit_symbol(std::string_view text, std::vector<std::int32_t>& out) const {
  const std::int32_t id = vocab_.find(text);
  if (mergeable(id)) {
    out.push_back(id);
    return;
  }
  emit_bytes(text, out);
}

void SentencePieceBpe::emit_bytes(std::string_view text, std::vector<std::int32_t>& out) const {
  if (byte_fallback_) {
    bool all = true;
    for (char c : text) {
      all = all && vocab_.byte_token(static_cast<std::uint8_t>(c)) >= 0;
    }
    if (all) {
      for (char c : text) {
        out.push_back(vocab_.byte_token(static_cast<std::uint8_t>(c)));
      }
      return;
    }
  }
  if (unk_id_ >= 0) out.push_back(unk_id_);
}

void SentencePieceBpe::append_bytes(std::int32_t id, std::string& out) const {
  const int b = vocab_.byte_value(id);
  if (b >= 0) {
    out.push_back(static_cast<char>(b));
    return;
  }
  const std::string& text = vocab_.text(id);
  for (std::size_t pos = 0; pos < text.size();) {
    if (text.compare(pos, kSpaceMark.size(), kSpaceMark) == 0) {
      out.push_back(' ');
      pos += kSpaceMark.size();
    } else {
      out.push_back(text[pos++]);
    }
  }
}

}  // namespace conveyor
