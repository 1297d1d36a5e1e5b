#include "common/tokenizer/chat_encoding.h"

namespace conveyor {

Expected<std::vector<std::int32_t>> encode_chat(const Tokenizer& tokenizer,
                                                const ChatTemplate& tmpl,
                                                const std::vector<ChatMessage>& messages,
                                                bool add_generation_prompt) {
  auto rendered = render_chat_segments(tmpl, messages, add_generation_prompt);
  if (!rendered.ok()) return rendered.status();
  std::vector<TextSegment> segments;
  segments.reserve(rendered->size());
  for (const ChatSegment& s : *rendered) {
    segments.push_back({s.text, /*parse_special=*/s.markup});
  }
  return to_expected([&] { return tokenizer.encode_segments(segments, /*add_special=*/false); });
}

}  // namespace conveyor
