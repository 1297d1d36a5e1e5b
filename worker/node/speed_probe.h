// A worker's measured speed, sent when it registers so that the planner gives faster
// workers more layers: the multiply-add rate of a small f32 matrix product on the
// worker's own backend threads, in GFLOP/s. Layers are matrix products, so this ranks
// CPU workers as their stages would; a GPU worker reports its backend's figure.
#pragma once

namespace conveyor {

// Runs for about `seconds`; at least one product is always timed.
double measure_cpu_gflops(int threads, double seconds = 0.05);

}  // namespace conveyor
