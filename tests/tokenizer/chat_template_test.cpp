#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/tokenizer/chat_template.h"
#include "common/tokenizer/tokenizer.h"
#include "tests/tokenizer/fixtures.h"

using namespace conveyor;
using conveyor::tokfix::messages_of;
using conveyor::tokfix::text_or_empty;

namespace {}  // namespace

TEST_CASE("each family renders exactly what transformers renders from its template") {
  const nlohmann::json doc = tokfix::read_json("chat_templates.json");
  for (const auto& entry : doc.at("templates")) {
    const std::string name = entry.at("name");
    CAPTURE(name);
    auto tmpl = detect_chat_template(entry.at("template"), text_or_empty(entry.at("bos_token")),
                                     text_or_empty(entry.at("eos_token")));
    REQUIRE_MESSAGE(tmpl.ok(), tmpl.status().to_string());
    CHECK(chat_family_name(tmpl->family) == entry.at("family").get<std::string>());
    CHECK(tmpl->default_system_prompt == entry.value("default_system_prompt", ""));
    for (const auto& c : entry.at("cases")) {
      const bool generation = c.at("add_generation_prompt");
      CAPTURE(generation);
      auto rendered = apply_chat_template(*tmpl, messages_of(c.at("messages")), generation);
      REQUIRE_MESSAGE(rendered.ok(), rendered.status().to_string());
      CHECK(*rendered == c.at("expected").get<std::string>());
    }
  }
}

TEST_CASE("SmolLM2: the template in the model picks ChatML with its default system prompt") {
  const TokenizerData data = tokfix::load_data("smollm2.data.json");
  auto tmpl = chat_template_for(data);
  REQUIRE(tmpl.ok());
  CHECK(tmpl->family == ChatFamily::kChatMl);
  CHECK(tmpl->default_system_prompt ==
        "You are a helpful AI assistant named SmolLM, trained by Hugging Face");

  // Rendered and tokenized, the ids equal transformers' apply_chat_template(tokenize=True).
  const Tokenizer tok(data);
  const nlohmann::json doc = tokfix::read_json("chat_templates.json");
  const auto& smol = doc.at("templates").at(0);
  REQUIRE(smol.at("name") == "smollm2");
  for (const auto& c : smol.at("cases")) {
    auto rendered =
        apply_chat_template(*tmpl, messages_of(c.at("messages")), c.at("add_generation_prompt"));
    REQUIRE(rendered.ok());
    CHECK(tok.encode(*rendered, /*add_special=*/false, /*parse_special=*/true) ==
          c.at("expected_ids").get<std::vector<std::int32_t>>());
  }
  // Generation stops at <|im_end|> (the EOS) and at <|endoftext|>.
  CHECK(tok.is_end_of_generation(tok.find_token("<|im_end|>")));
  CHECK(tok.is_end_of_generation(tok.find_token("<|endoftext|>")));
  CHECK(!tok.is_end_of_generation(tok.find_token("<|im_start|>")));
  CHECK(!tok.is_end_of_generation(tok.find_token("Hello")));
}

TEST_CASE("chat templates refuse what their Jinja would refuse") {
  auto llama2 = detect_chat_template("{{ bos_token }}[INST] <<SYS>>", "<s>", "</s>");
  REQUIRE(llama2.ok());
  CHECK(llama2->family == ChatFamily::kLlama2);
  const std::vector<ChatMessage> two_users = {{"user", "a"}, {"user", "b"}};
  auto r = apply_chat_template(*llama2, two_users, true);
  CHECK(r.status().code() == ErrorCode::kInvalidArgument);
  const std::vector<ChatMessage> tool = {{"user", "a"}, {"tool", "b"}};
  CHECK(apply_chat_template(*llama2, tool, true).status().code() == ErrorCode::kInvalidArgument);

  CHECK(detect_chat_template("", "", "").status().code() == ErrorCode::kNotFound);
  CHECK(detect_chat_template("{{ messages }}", "", "").status().code() == ErrorCode::kUnsupported);
}

TEST_CASE("an empty conversation renders only the generation prompt") {
  ChatTemplate chatml;
  chatml.default_system_prompt = "sys";
  auto r = apply_chat_template(chatml, {}, true);
  REQUIRE(r.ok());
  CHECK(*r == "<|im_start|>assistant\n");
}
