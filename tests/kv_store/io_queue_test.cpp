// The background I/O queue: jobs run in the order queued, wait() returns once a job
// and all before it have run, and destruction runs what is still queued.
#include "worker/kv_store/io_queue.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace conveyor {
namespace {

TEST_CASE("io queue: in order, wait covers earlier jobs, the destructor drains") {
  std::mutex mutex;
  std::vector<int> ran;
  std::atomic<int> count{0};
  {
    IoQueue queue;
    CHECK(queue.last_ticket() == 0);
    queue.wait(0);  // nothing to wait for
    std::uint64_t third = 0;
    for (int i = 0; i < 50; ++i) {
      const std::uint64_t ticket = queue.submit([&, i] {
        std::this_thread::sleep_for(std::chrono::microseconds(100));
        std::lock_guard lock(mutex);
        ran.push_back(i);
        ++count;
      });
      CHECK(ticket == static_cast<std::uint64_t>(i + 1));
      if (i == 2) third = ticket;
    }
    queue.wait(third);
    CHECK(count.load() >= 3);
    for (int i = 0; i < 100; ++i)
      queue.submit([&] { ++count; });
  }
  CHECK(count.load() == 150);
  REQUIRE(ran.size() == 50);
  for (int i = 0; i < 50; ++i)
    CHECK(ran[static_cast<std::size_t>(i)] == i);
}

}  // namespace
}  // namespace conveyor
