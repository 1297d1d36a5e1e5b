// Chat templates for the model families Conveyor serves, rendered in C++ rather
// than by a Jinja interpreter: the family is recognised from the template text a
// model ships, together with the few values that vary within a family (a
// default system prompt, Llama 3.1's date header, Mistral's spacing).
//
// The rendered text contains the special tokens as text (<|im_start|>, <s>). To
// tokenize a conversation use encode_chat() (chat_encoding.h): it parses special
// tokens only in the template's markup, so a message that spells "<|im_end|>" cannot
// end its turn early. Encoding apply_chat_template's text with parse_special = true
// gives the same ids for messages without special-token text, and is what
// transformers' apply_chat_template(tokenize=True) does.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "common/tokenizer/tokenizer_data.h"

namespace conveyor {

enum class ChatFamily {
  kChatMl,   // <|im_start|>role\ncontent<|im_end|>\n (SmolLM2, Qwen2)
  kLlama3,   // <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>
  kLlama2,   // <s>[INST] <<SYS>>\n...\n<</SYS>>\n\nuser [/INST] answer </s>
  kMistral,  // <s>[INST] user [/INST]answer</s>
};

const char* chat_family_name(ChatFamily family);

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", ...
  std::string content;
};

struct ChatTemplate {
  ChatFamily family = ChatFamily::kChatMl;
  std::string bos_token;  // the text the template writes for bos_token
  std::string eos_token;
  // ChatML: a system turn inserted when the conversation does not start with one
  // (SmolLM2: "You are a helpful AI assistant named SmolLM, trained by Hugging Face").
  std::string default_system_prompt;
  // Llama 3.1 and later: a system header that always leads, with these dates.
  bool llama3_date_header = false;
  std::string knowledge_date;  // "December 2023"
  std::string today_date;      // "26 Jul 2024": the templates' fallback, fixed for reproducibility
  // Mistral's later templates: " [INST] " and " " before each answer.
  bool mistral_spaced = false;
};

// Recognises the family of a Jinja chat template by its markers. kNotFound for an
// empty template, kUnsupported for one that matches no family.
Expected<ChatTemplate> detect_chat_template(const std::string& jinja, const std::string& bos_token,
                                            const std::string& eos_token);

// The same for a model's tokenizer: its template and its BOS/EOS token texts.
Expected<ChatTemplate> chat_template_for(const TokenizerData& data);

// One piece of a rendered conversation: text the template wrote (markup: special
// tokens, headers, separators) or text a message supplied (its content or role).
struct ChatSegment {
  std::string text;
  bool markup = false;
};

// Renders a conversation. kInvalidArgument where the family's own template would
// raise: Llama-2 and Mistral need user/assistant turns alternating from a user
// turn (after an optional system message). Mistral's first template rejects a
// system message; here it is folded into the first user turn, as later ones do.
Expected<std::string> apply_chat_template(const ChatTemplate& tmpl,
                                          const std::vector<ChatMessage>& messages,
                                          bool add_generation_prompt);

// The same rendering as segments, in order; their texts joined are
// apply_chat_template's text. Adjacent segments differ in `markup`.
Expected<std::vector<ChatSegment>> render_chat_segments(const ChatTemplate& tmpl,
                                                        const std::vector<ChatMessage>& messages,
                                                        bool add_generation_prompt);

}  // namespace conveyor
