// Reads a Hugging Face tokenizer.json into TokenizerData. Supported: model BPE,
// either byte-level (GPT-2, Llama-3, Qwen2, SmolLM2 configurations) or
// SentencePiece-style with "▁" (the legacy Prepend/Replace normaliser or the
// Metaspace pre-tokenizer) and byte fallback; NFC normalisation; Split, Digits,
// ByteLevel, Metaspace and Sequence pre-tokenizers; TemplateProcessing that adds
// BOS and/or EOS. Anything else fails with kUnsupported naming the component.
//
// A tokenizer_config.json beside the file supplies the BOS/EOS/pad tokens and the
// chat template (or a chat_template.jinja beside it); without one, BOS comes
// from the post-processor and EOS from a recognised special token ("</s>",
// "<|endoftext|>", "<|end_of_text|>").
#pragma once

#include <string>

#include "common/status.h"
#include "common/tokenizer/tokenizer_data.h"

namespace conveyor {

Expected<TokenizerData> load_tokenizer_json(const std::string& path);

// The same from the text of a tokenizer.json, with no sibling files.
Expected<TokenizerData> parse_tokenizer_json(const std::string& text);

}  // namespace conveyor
