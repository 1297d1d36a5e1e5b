// The tokenizer stored in GGUF metadata (tokenizer.ggml.*), read into the
// format-neutral TokenizerData and checked for consistency: the per-token arrays
// agree in length, special ids lie inside the vocabulary, token types are known
// and SentencePiece byte tokens are well-formed <0xNN>.
#pragma once

#include "common/gguf/gguf_metadata.h"
#include "common/status.h"
#include "common/tokenizer/tokenizer_data.h"

namespace conveyor {

// True when the file names a tokenizer model (tokenizer.ggml.model present and not "none").
bool gguf_has_tokenizer(const GgufMetadata& metadata);

// kNotFound when the file carries no tokenizer; kUnsupported for tokenizer models
// other than "gpt2" (byte-level BPE) and "llama" (SentencePiece BPE); kMalformed
// (naming the key) for inconsistent or out-of-range data, including more than
// max_tokens tokens (checked before any token is copied; -1: no limit);
// kOutOfRange for a token longer than kMaxTokenBytes.
Expected<TokenizerData> read_gguf_tokenizer(const GgufMetadata& metadata,
                                            std::int64_t max_tokens = -1);

}  // namespace conveyor
