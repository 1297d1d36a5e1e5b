#include "common/tokenizer/tokenizer_json.h"

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "common/hf/bounded_json.h"
#include "common/mapped_file.h"
#include "common/tokenizer/pre_tokenizer.h"
#include "common/tokenizer/token_text.h"

namespace conveyor {
namespace {

using nlohmann::json;

// Messages name no file: the entry points put the file in front.
[[noreturn]] void unsupported(const std::string& what) {
  fail(ErrorCode::kUnsupported, what);
}
[[noreturn]] void malformed(const std::string& what) {
  fail(ErrorCode::kMalformed, what);
}

// A chat_template.jinja: bounded like the JSON files beside it.
std::string read_text_file(const std::string& path) {
  auto file = MappedFile::open(path);
  if (!file.ok()) throw Error(file.status().code(), file.status().message());
  if (file->size() > kMaxJsonFileBytes) {
    fail(ErrorCode::kOutOfRange, path + " is " + std::to_string(file->size()) +
                                     " bytes, more than the " + std::to_string(kMaxJsonFileBytes) +
                                     " accepted");
  }
  return std::string(reinterpret_cast<const char*>(file->data()),
                     static_cast<std::size_t>(file->size()));
}

// Runs a conversion step, putting `where` in front of the message of any error
// it raises, nlohmann's exceptions included.
template <typename Fn>
auto in_file(const std::string& where, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error& e) {
    fail(e.code(), where + ": " + e.status().message());
  } catch (const json::exception& e) {
    fail(ErrorCode::kMalformed, where + ": " + e.what());
  }
}

std::string type_of(const json& node) {
  if (!node.is_object() || !node.contains("type") || !node["type"].is_string()) {
    malformed("component without a \"type\": " + node.dump().substr(0, 80));
  }
  return node["type"].get<std::string>();
}

bool flag(const json& node, const char* key, bool fallback) {
  const auto it = node.find(key);
  return it == node.end() || it->is_null() ? fallback : it->get<bool>();
}

// PCRE2 quoting for a literal Split pattern.
std::string quote_literal(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

// What the normaliser, pre-tokenizer and post-processor amount to.
struct Pipeline {
  bool byte_level = false;       // a ByteLevel pre-tokenizer
  bool replaces_spaces = false;  // spaces become "▁" (Replace or Metaspace)
  bool prefix = false;           // a "▁" is prepended
  SpacePrefixRule rule = SpacePrefixRule::kEveryRun;
  bool nfc = false;
  std::vector<std::string> regexes;
  std::string bos;  // tokens the post-processor adds
  std::string eos;
};

void read_normalizer(const json& node, Pipeline& p) {
  if (node.is_null()) return;
  const std::string type = type_of(node);
  if (type == "Sequence") {
    for (const json& n : node.at("normalizers")) {
      read_normalizer(n, p);
    }
  } else if (type == "NFC") {
    p.nfc = true;
  } else if (type == "Prepend" && node.value("prepend", "") == kSpaceMark) {
    p.prefix = true;
    p.rule = SpacePrefixRule::kEveryRun;
  } else if (type == "Replace" && node.at("pattern").value("String", "") == " " &&
             node.value("content", "") == kSpaceMark) {
    p.replaces_spaces = true;
  } else {
    unsupported("normalizer " + node.dump().substr(0, 120));
  }
}

void read_pre_tokenizer(const json& node, Pipeline& p) {
  if (node.is_null()) return;
  const std::string type = type_of(node);
  if (type == "Sequence") {
    for (const json& n : node.at("pretokenizers")) {
      read_pre_tokenizer(n, p);
    }
  } else if (type == "ByteLevel") {
    if (flag(node, "add_prefix_space", false)) unsupported("ByteLevel with add_prefix_space");
    p.byte_level = true;
    if (flag(node, "use_regex", true)) p.regexes.emplace_back(kGpt2Regex);
  } else if (type == "Split") {
    if (node.value("behavior", "") != "Isolated" || flag(node, "invert", false)) {
      unsupported("Split pre-tokenizer other than behavior Isolated without invert");
    }
    const json& pattern = node.at("pattern");
    if (pattern.contains("Regex")) {
      p.regexes.push_back(pattern["Regex"].get<std::string>());
    } else {
      p.regexes.push_back(quote_literal(pattern.at("String").get<std::string>()));
    }
  } else if (type == "Digits") {
    p.regexes.emplace_back(flag(node, "individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)");
  } else if (type == "Metaspace") {
    if (node.value("replacement", "") != kSpaceMark) unsupported("Metaspace replacement");
    p.replaces_spaces = true;
    std::string scheme = node.value("prepend_scheme", "");
    if (scheme.empty()) scheme = flag(node, "add_prefix_space", true) ? "always" : "never";
    if (scheme == "always") {
      p.prefix = true;
      p.rule = SpacePrefixRule::kEveryRunUnlessSpace;
    } else if (scheme == "first") {
      p.prefix = true;
      p.rule = SpacePrefixRule::kFirstRunUnlessSpace;
    } else if (scheme != "never") {
      unsupported("Metaspace prepend_scheme " + scheme);
    }
    // split: each "▁" starts a new piece (MergedWithNext).
    if (flag(node, "split", true)) {
      const std::string mark(kSpaceMark);
      p.regexes.push_back(mark + "[^" + mark + "]*|[^" + mark + "]+");
    }
  } else {
    unsupported("pre-tokenizer " + type);
  }
}

std::string single_special(const json& processor, const json& item) {
  const std::string name = item.at("SpecialToken").at("id").get<std::string>();
  const json& specials = processor.at("special_tokens");
  if (specials.contains(name) && specials[name].at("ids").size() != 1) {
    unsupported("post-processor special token " + name + " with several ids");
  }
  return name;
}

void read_post_processor(const json& node, Pipeline& p) {
  if (node.is_null()) return;
  const std::string type = type_of(node);
  if (type == "Sequence") {
    for (const json& n : node.at("processors")) {
      read_post_processor(n, p);
    }
  } else if (type == "ByteLevel") {
    // Only adjusts offsets.
  } else if (type == "TemplateProcessing") {
    const json& single = node.at("single");
    std::size_t sequence_at = single.size();
    for (std::size_t i = 0; i < single.size(); ++i) {
      if (single[i].contains("Sequence")) sequence_at = i;
    }
    if (sequence_at == single.size() || sequence_at > 1 || single.size() - sequence_at > 2) {
      unsupported("TemplateProcessing other than [BOS] $A [EOS]");
    }
    if (sequence_at == 1) p.bos = single_special(node, single[0]);
    if (sequence_at + 1 < single.size()) p.eos = single_special(node, single[sequence_at + 1]);
  } else {
    unsupported("post-processor " + type);
  }
}

// A special token named in tokenizer_config.json: a string or {"content": ...}.
std::string config_token(const json& config, const char* key) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content")) return (*it)["content"].get<std::string>();
  return {};
}

std::string config_template(const json& config) {
  const auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {  // named templates: take "default"
    for (const json& t : *it) {
      if (t.value("name", "") == "default") return t.value("template", "");
    }
  }
  return {};
}

TokenizerData convert(const json& root, const json* config, const std::string& jinja) {
  const json& model = root.at("model");
  if (model.value("type", "BPE") != "BPE") {
    unsupported("model type " + model.value("type", std::string("?")) + " (only BPE)");
  }
  if (!model.value("continuing_subword_prefix", json()).is_null() &&
      !model["continuing_subword_prefix"].get<std::string>().empty()) {
    unsupported("BPE continuing_subword_prefix");
  }
  if (!model.value("end_of_word_suffix", json()).is_null() &&
      !model["end_of_word_suffix"].get<std::string>().empty()) {
    unsupported("BPE end_of_word_suffix");
  }
  if (model.contains("dropout") && !model["dropout"].is_null() &&
      model["dropout"].get<double>() > 0.0) {
    unsupported("BPE dropout");
  }

  Pipeline p;
  read_normalizer(root.value("normalizer", json()), p);
  read_pre_tokenizer(root.value("pre_tokenizer", json()), p);
  read_post_processor(root.value("post_processor", json()), p);

  TokenizerData data;
  const bool byte_fallback = flag(model, "byte_fallback", false);
  if (p.byte_level) {
    if (p.replaces_spaces || p.prefix) unsupported("ByteLevel mixed with \"▁\" spaces");
    data.kind = TokenizerKind::kByteLevelBpe;
  } else if (p.replaces_spaces) {
    data.kind = TokenizerKind::kSentencePieceBpe;
    data.add_space_prefix = p.prefix;
    data.space_prefix_rule = p.rule;
    data.byte_fallback = byte_fallback;
  } else {
    unsupported("BPE with neither a ByteLevel pre-tokenizer nor \"▁\" spaces");
  }
  data.pre_regexes = p.regexes;
  data.normalize_nfc = p.nfc;
  data.ignore_merges = flag(model, "ignore_merges", false);
  // Name the pre-tokenizer when it is a known one; the regexes stay authoritative.
  data.pre = p.regexes.empty() ? "none" : "custom";
  for (const char* name : {"gpt2", "llama-bpe", "qwen2", "smollm"}) {
    if (data.kind == TokenizerKind::kByteLevelBpe && p.regexes == PreTokenizer::regexes_for(name)) {
      data.pre = name;
    }
  }

  // Token table: the model's vocabulary plus the added tokens.
  std::map<std::int64_t, std::string> by_id;
  for (const auto& [text, id] : model.at("vocab").items()) {
    check_token_length(id.get<std::int64_t>(), text);
    by_id[id.get<std::int64_t>()] = text;
  }
  std::vector<AddedToken> added;
  for (const json& t : root.value("added_tokens", json::array())) {
    AddedToken a;
    a.id = t.at("id").get<std::int64_t>();
    a.content = t.at("content").get<std::string>();
    check_token_length(a.id, a.content);
    a.special = t.value("special", false);
    a.lstrip = t.value("lstrip", false);
    a.rstrip = t.value("rstrip", false);
    a.single_word = t.value("single_word", false);
    by_id[a.id] = a.content;
    added.push_back(std::move(a));
  }
  if (by_id.empty()) malformed("empty vocabulary");
  if (by_id.begin()->first != 0 ||
      by_id.rbegin()->first != static_cast<std::int64_t>(by_id.size()) - 1) {
    malformed("token ids are not 0..n-1 without gaps");
  }
  data.tokens.reserve(by_id.size());
  for (auto& [id, text] : by_id) {
    data.tokens.push_back(std::move(text));
  }
  data.token_types.assign(data.tokens.size(), TokenType::kNormal);
  if (byte_fallback) {
    for (std::size_t i = 0; i < data.tokens.size(); ++i) {
      if (parse_byte_token(data.tokens[i]) >= 0) data.token_types[i] = TokenType::kByte;
    }
  }
  for (const AddedToken& a : added) {
    data.token_types[a.id] = a.special ? TokenType::kControl : TokenType::kUserDefined;
  }
  data.added_tokens = std::move(added);

  const auto id_of = [&](const std::string& text) -> std::int64_t {
    if (text.empty()) return -1;
    for (const AddedToken& a : data.added_tokens) {
      if (a.content == text) return a.id;
    }
    for (std::size_t i = 0; i < data.tokens.size(); ++i) {
      if (data.tokens[i] == text) return static_cast<std::int64_t>(i);
    }
    return -1;
  };
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    data.unk_id = id_of(model["unk_token"].get<std::string>());
    if (data.unk_id >= 0) data.token_types[data.unk_id] = TokenType::kUnknown;
  }

  // Merges: "a b" strings, or [a, b] pairs in newer files.
  for (const json& m : model.value("merges", json::array())) {
    if (m.is_string()) {
      data.merges.push_back(m.get<std::string>());
      continue;
    }
    if (!m.is_array() || m.size() != 2) malformed("merge that is neither \"a b\" nor [a, b]");
    const std::string left = m[0].get<std::string>();
    if (left.empty() || left.find(' ', 1) != std::string::npos) {
      unsupported("merge whose left token contains a space: \"" + left + "\"");
    }
    data.merges.push_back(left + " " + m[1].get<std::string>());
  }

  data.add_bos = !p.bos.empty();
  data.add_eos = !p.eos.empty();
  std::string bos = p.bos;
  std::string eos = p.eos;
  std::string pad;
  if (config != nullptr) {
    if (bos.empty()) bos = config_token(*config, "bos_token");
    if (const std::string e = config_token(*config, "eos_token"); !e.empty()) eos = e;
    pad = config_token(*config, "pad_token");
    data.chat_template = config_template(*config);
  } else if (eos.empty()) {
    for (const char* name : {"</s>", "<|endoftext|>", "<|end_of_text|>"}) {
      if (id_of(name) >= 0) {
        eos = name;
        break;
      }
    }
  }
  if (!jinja.empty()) data.chat_template = jinja;
  data.bos_id = id_of(bos);
  data.eos_id = id_of(eos);
  data.pad_id = id_of(pad);
  if (data.add_bos && data.bos_id < 0) malformed("post-processor adds unknown token " + p.bos);
  if (data.add_eos && data.eos_id < 0) malformed("post-processor adds unknown token " + p.eos);
  return data;
}

}  // namespace

Expected<TokenizerData> parse_tokenizer_json(const std::string& text) {
  return to_expected([&] {
    const json root = parse_json_bounded(text, "tokenizer.json");
    return in_file("tokenizer.json", [&] { return convert(root, nullptr, {}); });
  });
}

Expected<TokenizerData> load_tokenizer_json(const std::string& path) {
  return to_expected([&] {
    const json root = read_json_file(path);
    const std::filesystem::path dir = std::filesystem::path(path).parent_path();
    const std::string config_path = (dir / "tokenizer_config.json").string();
    const bool has_config = std::filesystem::exists(config_path);
    json config;
    if (has_config) config = read_json_file(config_path);
    std::string jinja;
    if (const std::filesystem::path jinja_path = dir / "chat_template.jinja";
        std::filesystem::exists(jinja_path)) {
      jinja = read_text_file(jinja_path.string());
    }
    return in_file(path, [&] { return convert(root, has_config ? &config : nullptr, jinja); });
  });
}

}  // namespace conveyor
