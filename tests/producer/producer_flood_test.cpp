#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "tests/producer/producer_harness.h"

namespace conveyor {

TEST_CASE("flood: producers past the queue limit get BUSY, memory stays bounded, nothing lost") {
  constexpr std::size_t kQueueLimit = 8;
  constexpr int kProducers = 12;
  constexpr std::uint32_t kChunks = 10;
  testing::ProducerHarness h(testing::local_server_options(), kQueueLimit);

  std::atomic<int> failures{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      auto options = h.client_options();
      options.timeout = std::chrono::seconds(5);
      ProducerClient client(h.context, options);
      const std::string job = "job-" + std::to_string(p);
      for (std::uint32_t c = 0; c < kChunks; ++c) {
        const std::vector<std::string> lines = {"{\"custom_id\":\"" + job + "-" +
                                                std::to_string(c) + "\"}"};
        if (!client.submit_chunk(job, c, c + 1 == kChunks, lines).ok()) ++failures;
      }
    });
  }
  // The consumer starts only once the queue has pushed back, then drains it.
  std::atomic<bool> producers_done{false};
  std::thread consumer([&] {
    (void)testing::eventually([&] { return h.server.counters().busy > 0; });
    while (!producers_done) {
      if (!h.service.drain_one()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  for (std::thread& t : producers)
    t.join();
  producers_done = true;
  consumer.join();

  CHECK(failures == 0);
  const std::size_t expected = std::size_t{kProducers} * kChunks;
  CHECK(h.service.stored_chunks() == expected);
  CHECK(h.service.accepted_total() == expected);  // each chunk accepted exactly once
  CHECK(h.service.max_depth() <= kQueueLimit);
  CHECK(h.server.counters().busy > 0);
  for (int p = 0; p < kProducers; ++p) {
    for (std::uint32_t c = 0; c < kChunks; ++c) {
      CHECK(h.service.answers("job-" + std::to_string(p), c) >= 1);
    }
  }
}

}  // namespace conveyor
