#include "common/tokenizer/chat_template.h"

#include <algorithm>
#include <string_view>
#include <utility>

#include "common/tokenizer/utf8.h"

namespace conveyor {
namespace {

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// Undoes the escapes a Jinja string literal may hold.
std::string unescape_jinja(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out.push_back(s[i]);
      continue;
    }
    const char c = s[++i];
    out.push_back(c == 'n' ? '\n' : c == 't' ? '\t' : c);
  }
  return out;
}

// After `marker` comes either a newline or the two characters "\n" (written as a
// Jinja escape); returns the position after it, or npos.
std::size_t skip_newline(std::string_view text, std::size_t pos) {
  if (pos < text.size() && text[pos] == '\n') return pos + 1;
  if (text.compare(pos, 2, "\\n") == 0) return pos + 2;
  return std::string_view::npos;
}

// A ChatML template's built-in system prompt: the first literal
// "<|im_start|>system\n...<|im_end|>" whose body is plain text rather than an
// expression such as messages[0]['content'].
std::string default_system_prompt(std::string_view jinja) {
  constexpr std::string_view kOpen = "<|im_start|>system";
  constexpr std::string_view kClose = "<|im_end|>";
  for (std::size_t at = jinja.find(kOpen); at != std::string_view::npos;
       at = jinja.find(kOpen, at + 1)) {
    const std::size_t body = skip_newline(jinja, at + kOpen.size());
    if (body == std::string_view::npos) continue;
    const std::size_t end = jinja.find(kClose, body);
    if (end == std::string_view::npos) break;
    const std::string_view text = jinja.substr(body, end - body);
    if (text.empty() || text.find_first_of("'\"{}") != std::string_view::npos) continue;
    return unescape_jinja(text);
  }
  return {};
}

// The text after `key` up to the end of the line (a newline or a "\n" escape).
std::string value_after(std::string_view jinja, std::string_view key) {
  const std::size_t at = jinja.find(key);
  if (at == std::string_view::npos) return {};
  std::size_t end = at + key.size();
  while (end < jinja.size() && jinja[end] != '\n' && jinja.compare(end, 2, "\\n") != 0 &&
         jinja[end] != '"' && jinja[end] != '\'') {
    ++end;
  }
  return std::string(jinja.substr(at + key.size(), end - at - key.size()));
}

// The literal in `set date_string = "..."`, Llama 3.1's fallback date.
std::string default_date(std::string_view jinja) {
  const std::size_t at = jinja.find("date_string = \"");
  if (at == std::string_view::npos) return {};
  const std::size_t begin = at + 15;
  const std::size_t end = jinja.find('"', begin);
  return end == std::string_view::npos ? std::string()
                                       : std::string(jinja.substr(begin, end - begin));
}

// Jinja's trim / Python's str.strip(): where the text is left after removing
// Unicode whitespace at both ends, as [begin, end).
std::pair<std::size_t, std::size_t> trim_bounds(std::string_view s) {
  const auto space_at = [&](std::size_t pos, std::size_t& next) {
    const char32_t cp = utf8::decode(s, next = pos);
    return utf8::is_whitespace(cp) || (cp >= 0x1C && cp <= 0x1F);
  };
  std::size_t begin = 0;
  std::size_t next = 0;
  while (begin < s.size() && space_at(begin, next)) {
    begin = next;
  }
  std::size_t end = begin;
  for (std::size_t pos = begin; pos < s.size();) {
    const bool space = space_at(pos, next);
    pos = next;
    if (!space) end = pos;
  }
  return {begin, end};
}

std::string trim(std::string_view s) {
  const auto [begin, end] = trim_bounds(s);
  return std::string(s.substr(begin, end - begin));
}

// A rendering under way: the text in segments that say whether the template wrote
// them (markup) or a message supplied them.
class Render {
 public:
  Render& markup(std::string_view text) { return add(text, true); }
  Render& message(std::string_view text) { return add(text, false); }
  Render& append(const Render& other) {
    for (const ChatSegment& s : other.segments_) {
      add(s.text, s.markup);
    }
    return *this;
  }
  // Jinja's `| trim` over everything rendered so far, across segment boundaries.
  Render& trim() {
    std::string joined;
    for (const ChatSegment& s : segments_) {
      joined += s.text;
    }
    const auto [begin, end] = trim_bounds(joined);
    std::vector<ChatSegment> kept;
    std::size_t at = 0;  // offset of the current segment in joined
    for (ChatSegment& s : segments_) {
      const std::size_t from = std::max(at, begin);
      const std::size_t to = std::min(at + s.text.size(), end);
      if (from < to) kept.push_back({s.text.substr(from - at, to - from), s.markup});
      at += s.text.size();
    }
    segments_ = std::move(kept);
    return *this;
  }
  std::vector<ChatSegment> take() { return std::move(segments_); }

 private:
  Render& add(std::string_view text, bool is_markup) {
    if (text.empty()) return *this;
    if (!segments_.empty() && segments_.back().markup == is_markup) {
      segments_.back().text.append(text);
    } else {
      segments_.push_back({std::string(text), is_markup});
    }
    return *this;
  }
  std::vector<ChatSegment> segments_;
};

Status bad(const std::string& message) {
  return Status(ErrorCode::kInvalidArgument, message);
}

// Llama-2 and Mistral: after an optional system message, user and assistant
// alternate starting with user.
Status check_alternation(const std::vector<ChatMessage>& messages, std::size_t first) {
  for (std::size_t i = first; i < messages.size(); ++i) {
    const std::string& role = messages[i].role;
    if (role != "user" && role != "assistant") {
      return bad("chat role \"" + role + "\" is not supported by this template");
    }
    if ((role == "user") != ((i - first) % 2 == 0)) {
      return bad(
          "chat roles must alternate user/assistant/user/... after an optional system "
          "message");
    }
  }
  return {};
}

// Roles come from the request like the content does, so both are message text.
Render render_chatml(const ChatTemplate& t, const std::vector<ChatMessage>& messages,
                     bool generation) {
  Render out;
  if (!t.default_system_prompt.empty() && !messages.empty() && messages[0].role != "system") {
    out.markup("<|im_start|>system\n").markup(t.default_system_prompt).markup("<|im_end|>\n");
  }
  for (const ChatMessage& m : messages) {
    out.markup("<|im_start|>").message(m.role).markup("\n");
    out.message(m.content).markup("<|im_end|>\n");
  }
  if (generation) out.markup("<|im_start|>assistant\n");
  return out;
}

// A turn whose role is `role`, written as markup when the template itself names it.
void llama3_turn(Render& out, const Render& role, const Render& content) {
  out.markup("<|start_header_id|>").append(role).markup("<|end_header_id|>\n\n");
  out.append(content).markup("<|eot_id|>");
}

Render render_llama3(const ChatTemplate& t, const std::vector<ChatMessage>& messages,
                     bool generation) {
  Render out;
  std::size_t first = 0;
  if (t.llama3_date_header) {
    Render system;
    system.markup("Cutting Knowledge Date: " + t.knowledge_date + "\nToday Date: " + t.today_date +
                  "\n\n");
    if (!messages.empty() && messages[0].role == "system") {
      system.message(trim(messages[0].content));
      first = 1;
    }
    out.markup(t.bos_token);
    llama3_turn(out, Render().markup("system"), system);
  } else if (!messages.empty()) {
    out.markup(t.bos_token);
  }
  for (std::size_t i = first; i < messages.size(); ++i) {
    llama3_turn(out, Render().message(messages[i].role),
                Render().message(trim(messages[i].content)));
  }
  if (generation) out.markup("<|start_header_id|>assistant<|end_header_id|>\n\n");
  return out;
}

Expected<Render> render_llama2(const ChatTemplate& t, const std::vector<ChatMessage>& messages) {
  const bool has_system = !messages.empty() && messages[0].role == "system";
  const std::size_t first = has_system ? 1 : 0;
  if (Status s = check_alternation(messages, first); !s.ok()) return s;
  Render out;
  for (std::size_t i = first; i < messages.size(); ++i) {
    Render content;
    if (i == first && has_system) {
      content.markup("<<SYS>>\n").message(messages[0].content).markup("\n<</SYS>>\n\n");
    }
    content.message(messages[i].content).trim();
    if (messages[i].role == "user") {
      out.markup(t.bos_token).markup("[INST] ").append(content).markup(" [/INST]");
    } else {
      out.markup(" ").append(content).markup(" ").markup(t.eos_token);
    }
  }
  return out;
}

Expected<Render> render_mistral(const ChatTemplate& t, const std::vector<ChatMessage>& messages) {
  const bool has_system = !messages.empty() && messages[0].role == "system";
  const std::size_t first = has_system ? 1 : 0;
  if (Status s = check_alternation(messages, first); !s.ok()) return s;
  Render out;
  out.markup(t.bos_token);
  for (std::size_t i = first; i < messages.size(); ++i) {
    if (messages[i].role == "user") {
      out.markup(t.mistral_spaced ? " [INST] " : "[INST] ");
      if (i == first && has_system) out.message(messages[0].content).markup("\n\n");
      out.message(messages[i].content).markup(" [/INST]");
    } else {
      out.markup(t.mistral_spaced ? " " : "").message(messages[i].content).markup(t.eos_token);
    }
  }
  return out;
}

}  // namespace

const char* chat_family_name(ChatFamily family) {
  switch (family) {
    case ChatFamily::kChatMl:
      return "chatml";
    case ChatFamily::kLlama3:
      return "llama3";
    case ChatFamily::kLlama2:
      return "llama2";
    case ChatFamily::kMistral:
      return "mistral";
  }
  return "?";
}

Expected<ChatTemplate> detect_chat_template(const std::string& jinja, const std::string& bos_token,
                                            const std::string& eos_token) {
  if (jinja.empty()) return Status(ErrorCode::kNotFound, "the model has no chat template");
  ChatTemplate t;
  t.bos_token = bos_token;
  t.eos_token = eos_token;
  if (contains(jinja, "<|im_start|>")) {
    t.family = ChatFamily::kChatMl;
    t.default_system_prompt = default_system_prompt(jinja);
  } else if (contains(jinja, "<|start_header_id|>")) {
    t.family = ChatFamily::kLlama3;
    if (contains(jinja, "Cutting Knowledge Date: ")) {
      t.llama3_date_header = true;
      t.knowledge_date = value_after(jinja, "Cutting Knowledge Date: ");
      t.today_date = default_date(jinja);
      if (t.today_date.empty()) t.today_date = "26 Jul 2024";
    }
  } else if (contains(jinja, "[INST]")) {
    t.family = contains(jinja, "<<SYS>>") ? ChatFamily::kLlama2 : ChatFamily::kMistral;
    t.mistral_spaced = contains(jinja, "' [INST] '") || contains(jinja, "\" [INST] \"");
  } else {
    return Status(ErrorCode::kUnsupported,
                  "chat template matches no supported family (ChatML, Llama-3, Llama-2, "
                  "Mistral)");
  }
  return t;
}

Expected<ChatTemplate> chat_template_for(const TokenizerData& data) {
  const auto text = [&](std::int64_t id) {
    return id >= 0 && id < static_cast<std::int64_t>(data.tokens.size()) ? data.tokens[id]
                                                                         : std::string();
  };
  return detect_chat_template(data.chat_template, text(data.bos_id), text(data.eos_id));
}

Expected<std::vector<ChatSegment>> render_chat_segments(const ChatTemplate& tmpl,
                                                        const std::vector<ChatMessage>& messages,
                                                        bool add_generation_prompt) {
  switch (tmpl.family) {
    case ChatFamily::kChatMl:
      return render_chatml(tmpl, messages, add_generation_prompt).take();
    case ChatFamily::kLlama3:
      return render_llama3(tmpl, messages, add_generation_prompt).take();
    case ChatFamily::kLlama2: {
      auto r = render_llama2(tmpl, messages);
      if (!r.ok()) return r.status();
      return r->take();
    }
    case ChatFamily::kMistral: {
      auto r = render_mistral(tmpl, messages);
      if (!r.ok()) return r.status();
      return r->take();
    }
  }
  return Status(ErrorCode::kInternal, "unknown chat family");
}

Expected<std::string> apply_chat_template(const ChatTemplate& tmpl,
                                          const std::vector<ChatMessage>& messages,
                                          bool add_generation_prompt) {
  auto segments = render_chat_segments(tmpl, messages, add_generation_prompt);
  if (!segments.ok()) return segments.status();
  std::string out;
  for (const ChatSegment& s : *segments) {
    out += s.text;
  }
  return out;
}

}  // namespace conveyor
