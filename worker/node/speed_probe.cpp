#include "worker/node/speed_probe.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

namespace conveyor {
namespace {

// C[n x n] += A[n x n] * B[n x n] over rows [begin, end), i-k-j order so the inner
// loop is contiguous and vectorises.
void multiply_rows(const std::vector<float>& a, const std::vector<float>& b, std::vector<float>& c,
                   int n, int begin, int end) {
  for (int i = begin; i < end; ++i) {
    float* row = c.data() + static_cast<std::ptrdiff_t>(i) * n;
    for (int k = 0; k < n; ++k) {
      const float x = a[static_cast<std::size_t>(i * n + k)];
      const float* brow = b.data() + static_cast<std::ptrdiff_t>(k) * n;
      for (int j = 0; j < n; ++j)
        row[j] += x * brow[j];
    }
  }
}

}  // namespace

double measure_cpu_gflops(int threads, double seconds) {
  constexpr int n = 192;
  threads = std::max(1, threads);
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n, 0.0f);
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  int products = 0;
  do {
    std::vector<std::thread> pool;
    const int rows = (n + threads - 1) / threads;
    for (int t = 0; t < threads; ++t) {
      const int begin = t * rows, end = std::min(n, begin + rows);
      if (begin < end)
        pool.emplace_back(multiply_rows, std::cref(a), std::cref(b), std::ref(c), n, begin, end);
    }
    for (auto& th : pool)
      th.join();
    ++products;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < seconds);
  const double flops = 2.0 * n * n * n * products;
  return flops / std::max(elapsed, 1e-9) / 1e9;
}

}  // namespace conveyor
