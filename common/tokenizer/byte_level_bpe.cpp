#include "common/tokenizer/byte_level_bpe.h"

#include "common/status.h"
#include "common/tokenizer/byte_level.h"
#include "common/tokenizer/token_text.h"

namespace conveyor {

void load_merges(const Vocab& vocab, const std::vector<std::string>& lines, BpeMerges& table) {
  table = BpeMerges(lines.size());
  std::string joined;
  for (std::size_t rank = 0; rank < lines.size(); ++rank) {
    std::string_view left;
    std::string_view right;
    if (!split_merge(lines[rank], left, right)) {
      fail(ErrorCode::kMalformed,
           "merge " + std::to_string(rank) + " \"" + lines[rank] + "\" is not two tokens");
    }
    joined.assign(left);
    joined.append(right);
    const std::int32_t l = vocab.find(left);
    const std::int32_t r = vocab.find(right);
    const std::int32_t m = vocab.find(joined);
    if (l < 0 || r < 0 || m < 0) {
      fail(ErrorCode::kMalformed, "merge " + std::to_string(rank) + " \"" + lines[rank] +
                                      "\" names a token that is not in the vocabulary");
    }
    table.add(l, r, static_cast<std::int32_t>(rank), m);
  }
}

namespace {

bool is_llama3_name(const std::string& pre) {
  return pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3";
}

}  // namespace

ByteLevelBpe::ByteLevelBpe(const Vocab& vocab, const TokenizerData& data)
    : vocab_(vocab),
      pre_(data.pre_regexes.empty() ? PreTokenizer::regexes_for(data.pre) : data.pre_regexes) {
  load_merges(vocab, data.merges, merges_);
  for (int b = 0; b < 256; ++b) {
    byte_symbol_[b] = vocab.find(byte_level::char_for_byte(static_cast<std::uint8_t>(b)));
  }
  // GGUF files do not record ignore_merges; llama.cpp switches it on for the
  // Llama-3 pre-tokenizer, where tokenizer.json has it set.
  ignore_merges_ = data.ignore_merges || (data.pre_regexes.empty() && is_llama3_name(data.pre));
}

void ByteLevelBpe::encode(std::string_view run, bool /*at_text_start*/,
                          std::vector<std::int32_t>& out) const {
  thread_local std::vector<std::string_view> pieces;
  pieces.clear();
  pre_.split(run, pieces);
  for (std::string_view piece : pieces) {
    encode_piece(piece, out);
  }
}

void ByteLevelBpe::encode_piece(std::string_view piece, std::vector<std::int32_t>& out) const {
  if (cache_.lookup(piece, out)) return;
  thread_local std::string spelled;
  if (ignore_merges_) {
    spelled.clear();
    byte_level::encode(piece, spelled);
    const std::int32_t id = vocab_.find(spelled);
    if (id >= 0 && !vocab_.is_control(id)) {
      out.push_back(id);
      return;
    }
  }
  thread_local std::vector<std::int32_t> symbols;
  symbols.clear();
  for (char c : piece) {
    // A byte without a token of its own is dropped, as tokenizers' BPE does
    // when there is no unknown token and llama.cpp does in its byte fallback.
    const std::int32_t id = byte_symbol_[static_cast<std::uint8_t>(c)];
    if (id >= 0) symbols.push_back(id);
  }
  merges_.apply(symbols);
  cache_.insert(piece, symbols.data(), symbols.size());
  out.insert(out.end(), symbols.begin(), symbols.end());
}

void ByteLevelBpe::append_bytes(std::int32_t id, std::string& out) const {
  byte_level::decode(vocab_.text(id), out);
}

}  // namespace conveyor
