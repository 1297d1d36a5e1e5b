// A product's input kept in another form in a scratch slot (its 16-bit conversion, its E4M3
// codes), and whether the next product may use that copy instead of making its own: only
// when it reads the same rows into the same form and place, with no op begun in between
// (the backend numbers its ops as they begin). q, k and v (gate and up) are such products.
#pragma once

#include <cstdint>

namespace conveyor::cuda {

class InputCopy {
 public:
  // Whether op `op` finds here the copy of x [m, k] in `form` at `where` that the op just
  // before it made.
  bool holds(const float* x, std::int64_t m, std::int64_t k, int form, const void* where,
             std::uint64_t op) const {
    return x_ != nullptr && x_ == x && m_ == m && k_ == k && form_ == form && where_ == where &&
           op_ + 1 == op;
  }
  // Op `op` made (or reused) this copy.
  void made(const float* x, std::int64_t m, std::int64_t k, int form, const void* where,
            std::uint64_t op) {
    x_ = x;
    m_ = m;
    k_ = k;
    form_ = form;
    where_ = where;
    op_ = op;
  }
  // An output of `count` floats at y: if it overlaps the rows copied, the copy is stale.
  void written(const float* y, std::int64_t count) {
    if (x_ != nullptr && y < x_ + m_ * k_ && x_ < y + count) x_ = nullptr;
  }
  void forget() { x_ = nullptr; }

 private:
  const float* x_ = nullptr;
  std::int64_t m_ = 0;
  std::int64_t k_ = 0;
  int form_ = 0;
  const void* where_ = nullptr;
  std::uint64_t op_ = 0;
};

}  // namespace conveyor::cuda
