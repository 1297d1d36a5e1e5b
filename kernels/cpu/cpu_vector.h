// Fixed-width float vectors (GCC/Clang vector extensions) for the CPU kernels. The
// compiler lowers them to whatever the enclosing function's target supports: one
// AVX-512 register, two AVX registers, four SSE registers, or scalar code.
//
// Every reduction goes through these helpers in one fixed order, so a value computed
// by any kernel variant (tile shape, thread split, batch size) is bit-for-bit the same
// for a given instruction set.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

namespace conveyor::cpu {

// (A typedef inside a class template: GCC ignores vector_size on a dependent alias
// template and would silently make Vec<L> a plain float.) Vectors are only ever held
// in local variables and reached through pointers, never passed or returned by value,
// so no function's calling convention depends on the target.
template <int L>
struct VecType {
  typedef float type __attribute__((vector_size(L * sizeof(float))));
  // The same vector at any float alignment, allowed to alias float data.
  typedef float unaligned __attribute__((vector_size(L * sizeof(float)), aligned(4), may_alias));
};
template <int L>
using Vec = typename VecType<L>::type;
static_assert(sizeof(Vec<8>) == 8 * sizeof(float));

// The L floats at p, as one vector: `Vec<L> v = *vec_at<L>(p);`.
template <int L>
[[gnu::always_inline]] inline const typename VecType<L>::unaligned* vec_at(const float* p) {
  return reinterpret_cast<const typename VecType<L>::unaligned*>(p);
}
template <int L>
[[gnu::always_inline]] inline typename VecType<L>::unaligned* vec_at(float* p) {
  return reinterpret_cast<typename VecType<L>::unaligned*>(p);
}

// L lanes of 32-bit integers (T: std::int32_t or std::uint32_t), the same vector at any
// 4-byte alignment, and the L words at p as one: the packed quants and the 2:4 indices,
// widened with 32-bit shifts (GCC does not vectorise byte-to-float conversions).
template <typename T, int L>
struct WordVecType {
  static_assert(sizeof(T) == 4);
  typedef T type __attribute__((vector_size(4 * L)));
  typedef T unaligned __attribute__((vector_size(4 * L), aligned(4), may_alias));
};
template <typename T, int L>
using WordVec = typename WordVecType<T, L>::type;
static_assert(sizeof(WordVec<std::uint32_t, 8>) == 32);
static_assert(sizeof(WordVec<std::int32_t, 16>) == 64);

template <typename T, int L>
[[gnu::always_inline]] inline const typename WordVecType<T, L>::unaligned* words_at(
    const std::uint8_t* p) {
  return reinterpret_cast<const typename WordVecType<T, L>::unaligned*>(p);
}

namespace detail {
template <int L, std::size_t... I>
[[gnu::always_inline]] inline void add_halves(const Vec<L>& v, Vec<L / 2>& out,
                                              std::index_sequence<I...>) {
  out = __builtin_shufflevector(v, v, I...) + __builtin_shufflevector(v, v, (I + L / 2)...);
}
}  // namespace detail

// Sum of the lanes by pairwise halving (lane i + lane i + L/2, recursively): a fixed
// order, more accurate than a running sum, and a few shuffles rather than L scalar adds.
template <int L>
[[gnu::always_inline]] inline float reduce_add(const Vec<L>& v) {
  if constexpr (L == 2) {
    return v[0] + v[1];
  } else {
    Vec<L / 2> half;
    detail::add_halves<L>(v, half, std::make_index_sequence<L / 2>());
    return reduce_add<L / 2>(half);
  }
}

// sum_i a[i] * b[i]: L-lane partial sums over whole vectors, reduced, then the tail.
template <int L>
[[gnu::always_inline]] inline float dot(const float* a, const float* b, std::int64_t n) {
  Vec<L> acc = {};
  std::int64_t i = 0;
  for (; i + L <= n; i += L)
    acc += *vec_at<L>(a + i) * *vec_at<L>(b + i);
  float sum = reduce_add<L>(acc);
  for (; i < n; ++i)
    sum += a[i] * b[i];
  return sum;
}

// y[i] += a * x[i]
template <int L>
[[gnu::always_inline]] inline void axpy(float a, const float* x, float* y, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + L <= n; i += L)
    *vec_at<L>(y + i) += a * *vec_at<L>(x + i);
  for (; i < n; ++i)
    y[i] += a * x[i];
}

}  // namespace conveyor::cpu
