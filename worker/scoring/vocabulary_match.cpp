#include "worker/scoring/vocabulary_match.h"

#include <string>

namespace conveyor {
namespace {

Status differ(const std::string& what) {
  return Status(ErrorCode::kInvalidArgument, "the tokenizers differ: " + what);
}

}  // namespace

Status same_vocabulary(const Tokenizer& a, const Tokenizer& b) {
  if (a.vocab_size() != b.vocab_size()) {
    return differ(std::to_string(a.vocab_size()) + " tokens against " +
                  std::to_string(b.vocab_size()));
  }
  if (a.kind() != b.kind()) return differ("one is byte-level BPE, the other SentencePiece");
  for (std::int32_t id = 0; id < a.vocab_size(); ++id) {
    if (a.token_text(id) != b.token_text(id)) {
      return differ("token " + std::to_string(id) + " is '" + a.token_text(id) + "' against '" +
                    b.token_text(id) + "'");
    }
  }
  if (a.bos_id() != b.bos_id() || a.add_bos() != b.add_bos()) {
    return differ("they begin a text differently (BOS " + std::to_string(a.bos_id()) +
                  (a.add_bos() ? " added" : " not added") + " against " +
                  std::to_string(b.bos_id()) + (b.add_bos() ? " added" : " not added") + ")");
  }
  if (a.eos_id() != b.eos_id() || a.add_eos() != b.add_eos()) {
    return differ("they end a text differently (EOS " + std::to_string(a.eos_id()) + " against " +
                  std::to_string(b.eos_id()) + ")");
  }
  return Status::ok_status();
}

}  // namespace conveyor
