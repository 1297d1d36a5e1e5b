// Whether two models read text the same way: comparing next-token distributions
// position by position (KL, top-1 agreement) means anything only when token i is the
// same piece of text in both and the text splits into the same ids.
#pragma once

#include "common/status.h"
#include "common/tokenizer/tokenizer.h"

namespace conveyor {

// OK when both tokenizers have the same tokens under the same ids (the vocabulary
// spelled the same, token by token), the same kind, and add the same BOS/EOS;
// kInvalidArgument saying the first difference otherwise.
Status same_vocabulary(const Tokenizer& a, const Tokenizer& b);

}  // namespace conveyor
