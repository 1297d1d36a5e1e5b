// SmolLM2's tokenizer read from its GGUF file through the model loader, when the
// model cache has it: the same data as the fixture, and the same ids as Hugging Face.
#include <doctest/doctest.h>

#include <string>

#include "common/loader/open_model.h"
#include "common/model_registry.h"
#include "common/tokenizer/chat_template.h"
#include "common/tokenizer/tokenizer.h"
#include "tests/tokenizer/fixtures.h"

using namespace conveyor;

TEST_CASE("SmolLM2 tokenizer from the GGUF file in the model cache") {
  const auto resolved = resolve_model_path("smollm2-135m-instruct");
  if (!resolved.ok()) {
    MESSAGE("skipped: " << resolved.status().to_string());
    return;
  }
  const std::string& path = *resolved;
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
