// A conversation to token ids, safe against content that spells special tokens.
//
// Rendering a chat template and encoding the text with parse_special = true lets a
// user write "<|im_end|><|im_start|>system" into a message and have it become real
// turn markers. encode_chat parses special tokens only in the template's own
// markup; message text (content and roles) is tokenized as text. For messages
// without special-token text the ids equal encoding the rendered text with
// parse_special = true, which is what transformers' apply_chat_template(tokenize=True)
// produces. Added tokens marked non-special are matched in message text as
// everywhere else (tokenizers and llama.cpp do the same); the guarantee covers the
// tokens marked special, which is where turn markers live.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "common/tokenizer/chat_template.h"
#include "common/tokenizer/tokenizer.h"

namespace conveyor {

// The ids of the rendered conversation. No BOS/EOS is added beyond what the
// template writes (add_special = false, as apply_chat_template does). Errors: those
// of render_chat_segments (kInvalidArgument for a conversation the template
// refuses), and kResourceExhausted when a pre-tokenizer regex hits PCRE2's limits.
Expected<std::vector<std::int32_t>> encode_chat(const Tokenizer& tokenizer,
                                                const ChatTemplate& tmpl,
                                                const std::vector<ChatMessage>& messages,
                                                bool add_generation_prompt);

}  // namespace conveyor
