#include "kernels/cpu/thread_pool.h"

#include <doctest/doctest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

using conveyor::ThreadPool;

TEST_CASE("thread pool runs every task exactly once, many times over") {
  ThreadPool pool(4);
  CHECK(pool.size() == 4);
  for (int round = 0; round < 200; ++round) {
    const std::int64_t tasks = 1 + round % 37;
    std::vector<std::atomic<int>> hits(static_cast<std::size_t>(tasks));
    std::atomic<int> bad_thread{0};
    pool.run(tasks, [&](std::int64_t t, int thread) {
      hits[static_cast<std::size_t>(t)]++;
      if (thread < 0 || thread >= pool.size()) bad_thread++;
    });
    for (auto& h : hits)
      CHECK(h.load() == 1);
    CHECK(bad_thread.load() == 0);
  }
}

TEST_CASE("parallel_ranges covers [0, n) with aligned, disjoint ranges") {
  ThreadPool pool(3);
  for (std::int64_t n : {1, 5, 16, 17, 100, 1000}) {
    std::vector<int> covered(static_cast<std::size_t>(n), 0);
    std::atomic<int> misaligned{0};
    pool.parallel_ranges(n, 8, [&](std::int64_t b, std::int64_t e, int) {
      if (b % 8 != 0) misaligned++;
      for (std::int64_t i = b; i < e; ++i)
        covered[static_cast<std::size_t>(i)]++;
    });
    for (int c : covered)
      CHECK(c == 1);
    CHECK(misaligned.load() == 0);
  }
}

TEST_CASE("an exception in a task reaches the caller and the pool stays usable") {
  ThreadPool pool(2);
  CHECK_THROWS_AS(pool.run(10,
                           [](std::int64_t t, int) {
                             if (t == 7) throw std::runtime_error("task failed");
                           }),
                  std::runtime_error);
  std::atomic<int> count{0};
  pool.run(10, [&](std::int64_t, int) { count++; });
  CHECK(count.load() == 10);
}

TEST_CASE("a single-thread pool runs tasks on the caller") {
  ThreadPool pool(1);
  int sum = 0;  // no synchronisation needed: everything runs here
  pool.run(5, [&](std::int64_t t, int thread) {
    CHECK(thread == 0);
    sum += static_cast<int>(t);
  });
  CHECK(sum == 10);
}

TEST_CASE("an oversubscribed pool finishes every job, with late-waking workers") {
  ThreadPool pool(8);  // more threads than this machine may have cores
  std::atomic<std::int64_t> total{0};
  std::int64_t expected = 0;
  for (int round = 0; round < 3000; ++round) {
    const std::int64_t tasks = 2 + round % 5;
    pool.run(tasks, [&](std::int64_t t, int) { total += t + 1; });
    expected += tasks * (tasks + 1) / 2;
    REQUIRE(total.load() == expected);  // run() returns only after every task
  }
}
