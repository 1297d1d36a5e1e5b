#include "common/conveyor_model/tokenizer_data_json.h"

#include <array>
#include <string_view>
#include <utility>

#include "common/conveyor_model/json_fields.h"
#include "common/status.h"
#include "common/tokenizer/token_text.h"

namespace conveyor {
namespace {

constexpr std::array<std::pair<TokenizerKind, std::string_view>, 2> kKinds = {{
    {TokenizerKind::kByteLevelBpe, "byte_level_bpe"},
    {TokenizerKind::kSentencePieceBpe, "sentencepiece_bpe"},
}};
constexpr std::array<std::pair<SpacePrefixRule, std::string_view>, 3> kPrefixRules = {{
    {SpacePrefixRule::kEveryRun, "every_run"},
    {SpacePrefixRule::kEveryRunUnlessSpace, "every_run_unless_space"},
    {SpacePrefixRule::kFirstRunUnlessSpace, "first_run_unless_space"},
}};

nlohmann::ordered_json byte_strings_to_json(const std::vector<std::string>& strings) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const std::string& s : strings)
    out.push_back(bytes_to_json(s));
  return out;
}

std::vector<std::string> byte_strings_from_json(const JsonFieldReader& f, std::string_view key) {
  const nlohmann::json& a = f.array(key);
  std::vector<std::string> out;
  out.reserve(a.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    out.push_back(bytes_from_json(a[i], f.path(key) + "[" + std::to_string(i) + "]"));
  return out;
}

std::string index_path(const JsonFieldReader& f, std::string_view key, std::size_t i) {
  return f.path(key) + "[" + std::to_string(i) + "]";
}

// -1 (none) or an id inside the vocabulary.
std::int64_t token_id(const JsonFieldReader& f, std::string_view key, std::int64_t tokens) {
  const std::int64_t id = f.integer(key);
  if (id < -1 || id >= tokens) {
    fail(ErrorCode::kMalformed, f.path(key) + " is " + std::to_string(id) +
                                    ", outside a vocabulary of " + std::to_string(tokens));
  }
  return id;
}

}  // namespace

nlohmann::ordered_json tokenizer_data_to_json(const TokenizerData& data) {
  nlohmann::ordered_json scores = nlohmann::ordered_json::array();
  for (float s : data.scores)
    scores.push_back(float_to_json(s));
  nlohmann::ordered_json types = nlohmann::ordered_json::array();
  for (TokenType t : data.token_types)
    types.push_back(static_cast<std::int32_t>(t));
  nlohmann::ordered_json added = nlohmann::ordered_json::array();
  for (const AddedToken& a : data.added_tokens) {
    added.push_back({{"id", a.id},
                     {"content", bytes_to_json(a.content)},
                     {"special", a.special},
                     {"lstrip", a.lstrip},
                     {"rstrip", a.rstrip},
                     {"single_word", a.single_word}});
  }
  return {
      {"kind", enum_name(kKinds, data.kind)},
      {"pre", bytes_to_json(data.pre)},
      {"tokens", byte_strings_to_json(data.tokens)},
      {"scores", std::move(scores)},
      {"token_types", std::move(types)},
      {"merges", byte_strings_to_json(data.merges)},
      {"bos_id", data.bos_id},
      {"eos_id", data.eos_id},
      {"unk_id", data.unk_id},
      {"pad_id", data.pad_id},
      {"eot_ids", data.eot_ids},
      {"add_bos", data.add_bos},
      {"add_eos", data.add_eos},
      {"chat_template", bytes_to_json(data.chat_template)},
      {"added_tokens", std::move(added)},
      {"pre_regexes", byte_strings_to_json(data.pre_regexes)},
      {"ignore_merges", data.ignore_merges},
      {"normalize_nfc", data.normalize_nfc},
      {"add_space_prefix", data.add_space_prefix},
      {"space_prefix_rule", enum_name(kPrefixRules, data.space_prefix_rule)},
      {"byte_fallback", data.byte_fallback},
  };
}

TokenizerData tokenizer_data_from_json(const nlohmann::json& json, const std::string& where) {
  const JsonFieldReader f(json, where);
  TokenizerData data;
  data.kind = enum_value(kKinds, f.string("kind"), f.path("kind"));
  data.pre = bytes_from_json(f.field("pre"), f.path("pre"));
  data.tokens = byte_strings_from_json(f, "tokens");
  const auto n = static_cast<std::int64_t>(data.tokens.size());

  const nlohmann::json& scores = f.array("scores");
  if (!scores.empty() && static_cast<std::int64_t>(scores.size()) != n) {
    fail(ErrorCode::kMalformed, f.path("scores") + " has " + std::to_string(scores.size()) +
                                    " values for " + std::to_string(n) + " tokens");
  }
  data.scores.reserve(scores.size());
  for (std::size_t i = 0; i < scores.size(); ++i)
    data.scores.push_back(float_from_json(scores[i], index_path(f, "scores", i)));

  const nlohmann::json& types = f.array("token_types");
  if (!types.empty() && static_cast<std::int64_t>(types.size()) != n) {
    fail(ErrorCode::kMalformed, f.path("token_types") + " has " + std::to_string(types.size()) +
                                    " values for " + std::to_string(n) + " tokens");
  }
  data.token_types.reserve(types.size());
  for (std::size_t i = 0; i < types.size(); ++i) {
    const std::int64_t t = json_integer(types[i], index_path(f, "token_types", i));
    if (t < static_cast<std::int64_t>(TokenType::kUndefined) ||
        t > static_cast<std::int64_t>(TokenType::kByte)) {
      fail(ErrorCode::kMalformed,
           index_path(f, "token_types", i) + " is " + std::to_string(t) + " (0 to 6 are valid)");
    }
    data.token_types.push_back(static_cast<TokenType>(t));
  }

  data.merges = byte_strings_from_json(f, "merges");
  for (std::size_t i = 0; i < data.merges.size(); ++i) {
    const std::string& m = data.merges[i];
    std::string_view left;
    std::string_view right;
    if (!split_merge(m, left, right)) {
      fail(ErrorCode::kMalformed,
           index_path(f, "merges", i) + " '" + m + "' is not two tokens separated by a space");
    }
  }

  data.bos_id = token_id(f, "bos_id", n);
  data.eos_id = token_id(f, "eos_id", n);
  data.unk_id = token_id(f, "unk_id", n);
  data.pad_id = token_id(f, "pad_id", n);
  data.eot_ids = f.integers("eot_ids");
  for (std::size_t i = 0; i < data.eot_ids.size(); ++i) {
    if (data.eot_ids[i] < 0 || data.eot_ids[i] >= n) {
      fail(ErrorCode::kMalformed, index_path(f, "eot_ids", i) + " is outside the vocabulary");
    }
  }
  data.add_bos = f.boolean("add_bos");
  data.add_eos = f.boolean("add_eos");
  data.chat_template = bytes_from_json(f.field("chat_template"), f.path("chat_template"));

  const nlohmann::json& added = f.array("added_tokens");
  data.added_tokens.reserve(added.size());
  for (std::size_t i = 0; i < added.size(); ++i) {
    const JsonFieldReader a(added[i], index_path(f, "added_tokens", i));
    AddedToken token;
    token.id = a.integer("id");
    if (token.id < 0 || token.id >= n) {
      fail(ErrorCode::kMalformed, a.path("id") + " is outside the vocabulary");
    }
    token.content = bytes_from_json(a.field("content"), a.path("content"));
    token.special = a.boolean("special");
    token.lstrip = a.boolean("lstrip");
    token.rstrip = a.boolean("rstrip");
    token.single_word = a.boolean("single_word");
    data.added_tokens.push_back(std::move(token));
  }
  data.pre_regexes = byte_strings_from_json(f, "pre_regexes");
  data.ignore_merges = f.boolean("ignore_merges");
  data.normalize_nfc = f.boolean("normalize_nfc");
  data.add_space_prefix = f.boolean("add_space_prefix");
  data.space_prefix_rule =
      enum_value(kPrefixRules, f.string("space_prefix_rule"), f.path("space_prefix_rule"));
  data.byte_fallback = f.boolean("byte_fallback");
  return data;
}

}  // namespace conveyor
