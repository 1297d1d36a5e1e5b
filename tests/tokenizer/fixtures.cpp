#include "tests/tokenizer/fixtures.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace conveyor::tokfix {
namespace {

std::string read_text(const std::string& relative) {
  std::ifstream in(path(relative), std::ios::binary);
  if (!in) throw std::runtime_error("missing fixture " + path(relative));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> read_lines(const std::string& relative) {
  std::vector<std::string> lines;
  std::istringstream in(read_text(relative));
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  return lines;
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

}  // namespace

std::string path(const std::string& relative) {
  return std::string(CONVEYOR_FIXTURES_DIR) + "/tokenizer/" + relative;
}

nlohmann::json read_json(const std::string& relative) {
  return nlohmann::json::parse(read_text(relative));
}

std::vector<Case> expected_cases(const std::string& name) {
  std::vector<Case> cases;
  const nlohmann::json doc = read_json(name + ".expected.json");
  for (const auto& c : doc.at("cases")) {
    Case k;
    k.name = c.at("name").get<std::string>();
    k.input =
        c.contains("hex") ? from_hex(c["hex"].get<std::string>()) : c.at("text").get<std::string>();
    k.ids = c.at("ids").get<std::vector<std::int32_t>>();
    k.ids_specials_as_text = c.value("ids_specials_as_text", k.ids);
    k.decoded = c.at("decoded").get<std::string>();
    k.decoded_skip_special = c.at("decoded_skip_special").get<std::string>();
    cases.push_back(std::move(k));
  }
  return cases;
}

TokenizerData load_data(const std::string& relative) {
  const nlohmann::json j = read_json(relative);
  TokenizerData d;
  d.kind =
      j.at("kind") == "llama" ? TokenizerKind::kSentencePieceBpe : TokenizerKind::kByteLevelBpe;
  d.pre = j.value("pre", "default");
  d.tokens = j.contains("tokens_file") ? read_lines(j["tokens_file"].get<std::string>())
                                       : j.at("tokens").get<std::vector<std::string>>();
  if (j.contains("merges_file")) d.merges = read_lines(j["merges_file"].get<std::string>());
  if (j.contains("scores")) d.scores = j["scores"].get<std::vector<float>>();
  if (j.contains("token_types")) {
    d.token_types.assign(d.tokens.size(), TokenType::kNormal);
    for (const auto& [id, type] : j["token_types"].items()) {
      d.token_types[std::stoul(id)] = static_cast<TokenType>(type.get<int>());
    }
  }
  d.bos_id = j.value("bos_id", -1);
  d.eos_id = j.value("eos_id", -1);
  d.unk_id = j.value("unk_id", -1);
  d.pad_id = j.value("pad_id", -1);
  d.add_bos = j.value("add_bos", false);
  d.add_eos = j.value("add_eos", false);
  d.add_space_prefix = j.value("add_space_prefix", true);
  d.chat_template = j.value("chat_template", "");
  return d;
}

std::vector<ChatMessage> messages_of(const nlohmann::json& j) {
  std::vector<ChatMessage> out;
  for (const auto& m : j) {
    out.push_back({m.at("role"), m.at("content")});
  }
  return out;
}

std::string text_or_empty(const nlohmann::json& j) {
  return j.is_string() ? j.get<std::string>() : std::string();
}

}  // namespace conveyor::tokfix
