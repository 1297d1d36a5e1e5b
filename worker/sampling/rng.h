// Rng: the per-sequence random source for sampling. Counter-based: the uniform
// drawn at generation step n depends only on (seed, n), never on what else ran
// before it in the process or in the batch. That gives three properties the engine
// relies on: the same seed yields the same tokens whatever the batch composition;
// a sequence requeued after a worker loss resumes with set_step(tokens_generated)
// and reproduces what it would have drawn; and a GPU sampler can compute the very
// same numbers from (seed, step) for comparison with this CPU reference.
#pragma once

#include <cstdint>
#include <optional>

namespace conveyor {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : seed_(seed) {}

  // The request's seed when it has one; otherwise a fresh one from the OS, so
  // unseeded requests do not all draw the same tokens.
  static Rng for_request(std::optional<std::uint64_t> seed);

  std::uint64_t seed() const { return seed_; }
  // How many uniforms have been drawn: the sampler draws exactly one per generated
  // token, so this is also the number of tokens sampled so far.
  std::uint64_t step() const { return step_; }
  void set_step(std::uint64_t step) { step_ = step; }

  // The uniform for the current step, in [0, 1); then advances to the next step.
  double next_uniform() { return uniform_at(seed_, step_++); }

  // The pure function behind next_uniform(), for twins on other devices.
  static std::uint64_t bits_at(std::uint64_t seed, std::uint64_t step);
  static double uniform_at(std::uint64_t seed, std::uint64_t step);

 private:
  std::uint64_t seed_;
  std::uint64_t step_ = 0;
};

}  // namespace conveyor
