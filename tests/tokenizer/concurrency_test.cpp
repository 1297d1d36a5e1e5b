// Tokenizers are shared between threads; the per-thread BPE caches must keep
// tokenizers apart and give every thread the same ids.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/tokenizer_json.h"
#include "tests/tokenizer/fixtures.h"

using namespace conveyor;

TEST_CASE("many threads and several tokenizers at once give the reference ids") {
  const Tokenizer smol(tokfix::load_data("smollm2.data.json"));
  auto gpt2_data = load_tokenizer_json(tokfix::path("gpt2-bpe/tokenizer.json"));
  auto llama3_data = load_tokenizer_json(tokfix::path("llama3-bpe/tokenizer.json"));
  REQUIRE(gpt2_data.ok());
  REQUIRE(llama3_data.ok());
  const Tokenizer gpt2(*gpt2_data);
  const Tokenizer llama3(*llama3_data);
  const std::vector<const Tokenizer*> tokenizers = {&smol, &gpt2, &llama3};
  const std::vector<std::vector<tokfix::Case>> expected = {tokfix::expected_cases("smollm2"),
                                                           tokfix::expected_cases("gpt2-bpe"),
                                                           tokfix::expected_cases("llama3-bpe")};
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        // Interleave the tokenizers so each thread's caches hold several at once.
        for (std::size_t k = 0; k < tokenizers.size(); ++k) {
          const std::size_t which = (k + static_cast<std::size_t>(t + round)) % tokenizers.size();
          for (const tokfix::Case& c : expected[which]) {
            if (tokenizers[which]->encode(c.input, true, true) != c.ids) ++mismatches;
          }
        }
      }
    });
  }
  for (std::thread& th : threads) {
    th.join();
  }
  CHECK(mismatches.load() == 0);
}

TEST_CASE("a tokenizer built where a destroyed one lived does not see its cache") {
  auto gpt2_data = load_tokenizer_json(tokfix::path("gpt2-bpe/tokenizer.json"));
  REQUIRE(gpt2_data.ok());
  const std::vector<tokfix::Case> smol_cases = tokfix::expected_cases("smollm2");
  const std::vector<tokfix::Case> gpt2_cases = tokfix::expected_cases("gpt2-bpe");
  for (int i = 0; i < 6; ++i) {
    // Alternate two vocabularies through (likely) the same heap address.
    const bool smol = i % 2 == 0;
    auto tok =
        std::make_unique<Tokenizer>(smol ? tokfix::load_data("smollm2.data.json") : *gpt2_data);
    for (const tokfix::Case& c : smol ? smol_cases : gpt2_cases) {
      CAPTURE(c.name);
      CHECK(tok->encode(c.input, true, true) == c.ids);
    }
  }
}
