// SmolLM2's tokenizer read from its GGUF file through the model loader, when the
// model cache has it: the same data as the fixture, and the same ids as Hugging Face.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/loader/open_model.h"
#include "common/tokenizer/chat_template.h"
#include "common/tokenizer/tokenizer.h"
#include "tests/tokenizer/fixtures.h"

using namespace conveyor;

TEST_CASE("SmolLM2 tokenizer from the GGUF file in the model cache") {
  const char* home_env = std::getenv("CONVEYOR_HOME");
  const char* user_home = std::getenv("HOME");
  const std::string home =
      home_env != nullptr ? home_env : std::string(user_home ? user_home : "") + "/.cache/conveyor";
  const std::string path = home + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(path)) {
    MESSAGE("skipped: " << path << " is absent (scripts/install-model.sh puts it there)");
    return;
  }
  auto source = open_model_source(path);
  REQUIRE_MESSAGE(source.ok(), source.status().to_string());
  REQUIRE((*source)->tokenizer().has_value());
  const TokenizerData& data = *(*source)->tokenizer();
  const TokenizerData fixture = tokfix::load_data("smollm2.data.json");
  CHECK(data.kind == TokenizerKind::kByteLevelBpe);
  CHECK(data.pre == "smollm");
  CHECK(data.tokens == fixture.tokens);
  CHECK(data.merges == fixture.merges);
  CHECK(data.token_types == fixture.token_types);
  CHECK(data.bos_id == fixture.bos_id);
  CHECK(data.eos_id == fixture.eos_id);
  CHECK(data.add_bos == fixture.add_bos);
  CHECK(data.chat_template == fixture.chat_template);

  const Tokenizer tok(data);
  for (const tokfix::Case& c : tokfix::expected_cases("smollm2")) {
    CAPTURE(c.name);
    CHECK(tok.encode(c.input, true, true) == c.ids);
  }
  auto tmpl = chat_template_for(data);
  REQUIRE(tmpl.ok());
  CHECK(tmpl->family == ChatFamily::kChatMl);
}
