// A reference model is compared position by position only when it reads text as the
// model does: same_vocabulary() says where two tokenizers differ.
#include <doctest/doctest.h>

#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/tokenizer_json.h"
#include "worker/scoring/vocabulary_match.h"

using namespace conveyor;

namespace {

TokenizerData fixture(const std::string& name) {
  return load_tokenizer_json(std::string(CONVEYOR_FIXTURES_DIR) + "/tokenizer/" + name +
                             "/tokenizer.json")
      .value();
}

}  // namespace

TEST_CASE("a tokenizer has the same vocabulary as itself and as a copy") {
  const TokenizerData data = fixture("gpt2-bpe");
  const Tokenizer a(data);
  const Tokenizer b(data);
  CHECK(same_vocabulary(a, a).ok());
  CHECK(same_vocabulary(a, b).ok());
}

TEST_CASE("different vocabularies are told apart, with the first difference") {
  const TokenizerData data = fixture("gpt2-bpe");
  const Tokenizer gpt2(data);
  SUBCASE("another tokenizer") {
    const Status s = same_vocabulary(gpt2, Tokenizer(fixture("qwen2-bpe")));
    CHECK(s.code() == ErrorCode::kInvalidArgument);
    CHECK(s.message().find("tokens against") != std::string::npos);
  }
  SUBCASE("one token spelled differently") {
    TokenizerData changed = data;
    changed.tokens[100] = changed.tokens[100] + "x";
    const Status s = same_vocabulary(gpt2, Tokenizer(changed));
    CHECK(!s.ok());
    CHECK(s.message().find("token 100") != std::string::npos);
  }
  SUBCASE("a BOS added by one only") {
    TokenizerData changed = data;
    changed.bos_id = 0;
    changed.add_bos = !data.add_bos;
    const Status s = same_vocabulary(gpt2, Tokenizer(changed));
    CHECK(!s.ok());
    CHECK(s.message().find("BOS") != std::string::npos);
  }
}
