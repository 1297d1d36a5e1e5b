// Sampling on the GPU, one block per row of logits, exactly as worker/sampling/sampler.h
// specifies it (its twin): penalties, then temperature, top-k, top-p, min-p, and a draw
// by inverse CDF with the row's uniform over the survivors in token-id order. Only the
// order in which sums are rounded differs (doubles here too; added by atomics, so the order
// may change from run to run), which moves a cut-off or a draw only when it falls within
// an ulp of a boundary.
//
// Nothing is sorted. As on the host, each candidate's bucket (score_buckets.h: its
// temperature-scaled gap to the best logit, 1/32 nat wide) ranks it coarsely: a histogram
// of the buckets finds the one holding the last token top-k or top-p keeps, and inside
// that bucket a radix select over 64-bit keys (logit descending, then id ascending:
// ranks_before()) finds that token. A survivor is then a test on a token's own logit:
// bucket before the boundary's, or the boundary's and ranked no later than its last.
#include <cuda_runtime.h>

#include <cfloat>
#include <climits>
#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"

namespace conveyor::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarpsPerBlock = kThreads / 32;
constexpr std::uint32_t kBucketsPerNat = 32;  // worker/sampling/score_buckets.h
constexpr int kBuckets = 64 * kBucketsPerNat;
constexpr int kRadix = 256;
constexpr unsigned long long kAllKeys = ~0ull;  // a cutoff that keeps a whole bucket
constexpr std::uint32_t kFull = 0xffffffffu;

// The sampler's key: rank order is ascending key order (higher logit first, then lower
// id). -0 ranks as +0, as the comparison of floats has it.
__device__ __forceinline__ unsigned long long rank_key(float logit, int token) {
  std::uint32_t bits = __float_as_uint(logit == 0.0f ? 0.0f : logit);
  const std::uint32_t ascending = (bits & 0x80000000u) != 0 ? ~bits : bits | 0x80000000u;
  return (static_cast<unsigned long long>(~ascending) << 32) | static_cast<std::uint32_t>(token);
}

// What decides whether a token survives, and its weight: the host's arithmetic, operation
// for operation (no contraction into fused multiply-adds; the exponential in double).
struct RowFilter {
  float max_logit;
  float inverse_temperature;
  int k_bucket = kBuckets;  // top-k: survivors rank no later than (k_bucket, k_key)
  unsigned long long k_key = kAllKeys;
  int p_bucket = kBuckets;  // top-p, the same over top-k's survivors
  unsigned long long p_key = kAllKeys;
  float min_p = 0.0f;

  __device__ float gap(float logit) const {
    return __fmul_rn(__fsub_rn(max_logit, logit), inverse_temperature);
  }
  __device__ static int bucket(float gap) {
    const float scaled = __fmul_rn(gap, static_cast<float>(kBucketsPerNat));
    return scaled < static_cast<float>(kBuckets - 1) ? static_cast<int>(scaled) : kBuckets - 1;
  }
  // A weight as the host computes it: the exponential in double, rounded to float.
  __device__ static float weight(float gap) {
    return static_cast<float>(exp(-static_cast<double>(gap)));
  }
  __device__ static bool within(int bucket, unsigned long long key, int cut_bucket,
                                unsigned long long cut_key) {
    return bucket < cut_bucket || (bucket == cut_bucket && key <= cut_key);
  }
  __device__ bool after_top_k(float logit, int token, int b) const {
    return logit > -INFINITY && within(b, rank_key(logit, token), k_bucket, k_key);
  }
  __device__ bool after_top_p(float logit, int token, int b) const {
    return after_top_k(logit, token, b) && within(b, rank_key(logit, token), p_bucket, p_key);
  }
  // Whether a token survives every filter, and the weight it is drawn with.
  __device__ bool survives(float logit, int token, double& weight) const {
    if (!(logit > -INFINITY)) return false;
    const float g = gap(logit);
    if (!after_top_p(logit, token, bucket(g))) return false;
    const float w = RowFilter::weight(g);
    weight = w;
    return !(w < min_p);
  }
};

struct Shared {
  int bucket_counts[kBuckets];
  double bucket_weights[kBuckets];
  int radix_counts[kRadix];
  double radix_weights[kRadix];
  double warp_doubles[kWarpsPerBlock];
  float warp_floats[kWarpsPerBlock];
  int warp_ints[kWarpsPerBlock];
  int found_index;
  int found_count_before;
  double found_weight_before;
  int flag;
};

__device__ double block_sum(double v, Shared& sh) {
  for (int offset = 16; offset > 0; offset /= 2)
    v += __shfl_xor_sync(kFull, v, offset);
  __syncthreads();
  if (threadIdx.x % 32 == 0) sh.warp_doubles[threadIdx.x / 32] = v;
  __syncthreads();
  double total = 0.0;
  for (int w = 0; w < kWarpsPerBlock; ++w)
    total += sh.warp_doubles[w];
  return total;
}

__device__ float block_max(float v, Shared& sh) {
  for (int offset = 16; offset > 0; offset /= 2) {
    const float other = __shfl_xor_sync(kFull, v, offset);
    v = other > v ? other : v;
  }
  __syncthreads();
  if (threadIdx.x % 32 == 0) sh.warp_floats[threadIdx.x / 32] = v;
  __syncthreads();
  float m = -INFINITY;
  for (int w = 0; w < kWarpsPerBlock; ++w)
    m = sh.warp_floats[w] > m ? sh.warp_floats[w] : m;
  return m;
}

__device__ int block_min(int v, Shared& sh) {
  for (int offset = 16; offset > 0; offset /= 2)
    v = min(v, __shfl_xor_sync(kFull, v, offset));
  __syncthreads();
  if (threadIdx.x % 32 == 0) sh.warp_ints[threadIdx.x / 32] = v;
  __syncthreads();
  int m = INT_MAX;
  for (int w = 0; w < kWarpsPerBlock; ++w)
    m = min(m, sh.warp_ints[w]);
  return m;
}

// By warp 0: the first of n (count, weight) entries at which the running count reaches
// need_count or the running weight reaches need_weight, and the count and weight before
// it, into sh.found_*; n when none does.
__device__ void find_first_reaching(const int* counts, const double* weights, int n, int count_base,
                                    double weight_base, int need_count, double need_weight,
                                    Shared& sh) {
  if (threadIdx.x >= 32) return;
  const int lane = threadIdx.x;
  for (int start = 0; start < n; start += 32) {
    const int own_count = counts[start + lane];
    const double own_weight = weights[start + lane];
    int c = own_count;
    double w = own_weight;
    for (int offset = 1; offset < 32; offset *= 2) {
      const int c_up = __shfl_up_sync(kFull, c, offset);
      const double w_up = __shfl_up_sync(kFull, w, offset);
      if (lane >= offset) {
        c += c_up;
        w += w_up;
      }
    }
    // The sums before each entry: the previous lane's inclusive sums, as they were added.
    int c_before = __shfl_up_sync(kFull, c, 1);
    double w_before = __shfl_up_sync(kFull, w, 1);
    if (lane == 0) {
      c_before = 0;
      w_before = 0.0;
    }
    const bool reached = count_base + c >= need_count || weight_base + w >= need_weight;
    const unsigned ballot = __ballot_sync(kFull, reached);
    if (ballot != 0) {
      const int first = __ffs(static_cast<int>(ballot)) - 1;
      if (lane == first) {
        sh.found_index = start + first;
        sh.found_count_before = count_base + c_before;
        sh.found_weight_before = weight_base + w_before;
      }
      return;
    }
    count_base += __shfl_sync(kFull, c, 31);
    weight_base += __shfl_sync(kFull, w, 31);
  }
  if (lane == 0) {
    sh.found_index = n;
    sh.found_count_before = count_base;
    sh.found_weight_before = weight_base;
  }
}

// Of the tokens `member` admits (with their weights), in rank order after count_before
// tokens and weight_before of weight that rank earlier, the key of the first at which
// the running count reaches need_count or the running weight need_weight; kAllKeys when
// rounding leaves the running weight short of it (the whole bucket stays, as on the host).
template <typename Member>
__device__ unsigned long long select_cutoff(const float* row, int vocab, Member member,
                                            int count_before, double weight_before, int need_count,
                                            double need_weight, Shared& sh) {
  unsigned long long prefix = 0;
  for (int shift = 56; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < kRadix; i += kThreads) {
      sh.radix_counts[i] = 0;
      sh.radix_weights[i] = 0.0;
    }
    __syncthreads();
    const unsigned long long high = shift == 56 ? 0ull : ~0ull << (shift + 8);
    for (int i = threadIdx.x; i < vocab; i += kThreads) {
      double weight = 0.0;
      if (!member(row[i], i, weight)) continue;
      const unsigned long long key = rank_key(row[i], i);
      if ((key & high) != prefix) continue;
      const int digit = static_cast<int>((key >> shift) & (kRadix - 1));
      atomicAdd(&sh.radix_counts[digit], 1);
      if (weight != 0.0) atomicAdd(&sh.radix_weights[digit], weight);
    }
    __syncthreads();
    find_first_reaching(sh.radix_counts, sh.radix_weights, kRadix, count_before, weight_before,
                        need_count, need_weight, sh);
    __syncthreads();
    if (sh.found_index == kRadix) return kAllKeys;
    prefix |= static_cast<unsigned long long>(sh.found_index) << shift;
    count_before = sh.found_count_before;
    weight_before = sh.found_weight_before;
    __syncthreads();
  }
  return prefix;
}

__global__ void __launch_bounds__(kThreads)
    sample_kernel(float* logits, std::int64_t vocab64, const DeviceSampleRow* rows,
                  const std::int32_t* history_tokens, const std::int32_t* history_counts,
                  std::int32_t* out) {
  __shared__ Shared sh;
  const DeviceSampleRow p = rows[blockIdx.x];
  const int vocab = static_cast<int>(vocab64);
  float* row = logits + blockIdx.x * vocab64;

  // Penalties, in place: repetition over the distinct tokens seen, then presence and
  // frequency over the distinct output tokens. Each list holds a token once, so no two
  // threads write one logit.
  if (threadIdx.x == 0) sh.flag = 0;
  __syncthreads();
  if (p.repetition_penalty != 1.0f) {
    for (int i = threadIdx.x; i < p.seen_count; i += kThreads) {
      const int token = history_tokens[p.seen_offset + i];
      if (token < 0 || token >= vocab) {
        sh.flag = 1;
        continue;
      }
      const float logit = row[token];
      row[token] = logit > 0.0f ? __fdiv_rn(logit, p.repetition_penalty)
                                : __fmul_rn(logit, p.repetition_penalty);
    }
    __syncthreads();
  }
  if (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    for (int i = threadIdx.x; i < p.output_count; i += kThreads) {
      const int token = history_tokens[p.output_offset + i];
      if (token < 0 || token >= vocab) {
        sh.flag = 1;
        continue;
      }
      const float count = static_cast<float>(history_counts[p.output_offset + i]);
      row[token] = __fsub_rn(row[token],
                             __fadd_rn(__fmul_rn(p.frequency_penalty, count), p.presence_penalty));
    }
  }
  __syncthreads();
  if (sh.flag != 0) {
    if (threadIdx.x == 0) out[blockIdx.x] = kSampleBadHistory;
    return;
  }

  // The best logit (NaN never), and greedy's choice: its lowest index.
  float local_max = -INFINITY;
  for (int i = threadIdx.x; i < vocab; i += kThreads)
    local_max = row[i] > local_max ? row[i] : local_max;
  const float max_logit = block_max(local_max, sh);
  if (!(max_logit > -INFINITY)) {
    if (threadIdx.x == 0) out[blockIdx.x] = kSampleNothing;
    return;
  }
  if (p.greedy != 0) {
    int first = INT_MAX;
    for (int i = threadIdx.x; i < vocab; i += kThreads) {
      if (row[i] == max_logit) {
        first = i;
        break;
      }
    }
    first = block_min(first, sh);
    if (threadIdx.x == 0) out[blockIdx.x] = first;
    return;
  }
  if (isinf(max_logit)) {
    if (threadIdx.x == 0) out[blockIdx.x] = kSampleInfinite;
    return;
  }

  RowFilter f;
  f.max_logit = max_logit;
  f.inverse_temperature = __fdiv_rn(1.0f, p.temperature);

  // Top-k: the bucket holding the k-th candidate, then its last key there.
  for (int i = threadIdx.x; i < kBuckets; i += kThreads) {
    sh.bucket_counts[i] = 0;
    sh.bucket_weights[i] = 0.0;
  }
  __syncthreads();
  int local_candidates = 0;
  for (int i = threadIdx.x; i < vocab; i += kThreads) {
    if (row[i] > -INFINITY) {
      atomicAdd(&sh.bucket_counts[RowFilter::bucket(f.gap(row[i]))], 1);
      ++local_candidates;
    }
  }
  const double candidates = block_sum(static_cast<double>(local_candidates), sh);
  if (p.top_k > 0 && static_cast<double>(p.top_k) < candidates) {
    find_first_reaching(sh.bucket_counts, sh.bucket_weights, kBuckets, 0, 0.0, p.top_k, INFINITY,
                        sh);
    __syncthreads();
    const int boundary = sh.found_index;
    const int before = sh.found_count_before;
    __syncthreads();
    f.k_bucket = boundary;
    f.k_key = select_cutoff(
        row, vocab,
        [&](float logit, int, double&) {
          return logit > -INFINITY && RowFilter::bucket(f.gap(logit)) == boundary;
        },
        before, 0.0, p.top_k, INFINITY, sh);
  }

  // Top-p over what top-k kept: the bucket where the ranked weight reaches top_p of the
  // total, then its last key there.
  if (p.top_p < 1.0f) {
    for (int i = threadIdx.x; i < kBuckets; i += kThreads)
      sh.bucket_weights[i] = 0.0;
    __syncthreads();
    double local_total = 0.0;
    for (int i = threadIdx.x; i < vocab; i += kThreads) {
      const float logit = row[i];
      if (!(logit > -INFINITY)) continue;
      const float g = f.gap(logit);
      const int b = RowFilter::bucket(g);
      if (!f.after_top_k(logit, i, b)) continue;
      const double w = RowFilter::weight(g);
      local_total += w;
      atomicAdd(&sh.bucket_weights[b], w);
    }
    const double total = block_sum(local_total, sh);
    const double need = static_cast<double>(p.top_p) * total;
    // Counts never decide top-p: zero them so that only weights reach.
    for (int i = threadIdx.x; i < kBuckets; i += kThreads)
      sh.bucket_counts[i] = 0;
    __syncthreads();
    find_first_reaching(sh.bucket_counts, sh.bucket_weights, kBuckets, 0, 0.0, INT_MAX, need, sh);
    __syncthreads();
    const int boundary = sh.found_index;
    const double before = sh.found_weight_before;
    __syncthreads();
    if (boundary < kBuckets) {
      f.p_bucket = boundary;
      f.p_key = select_cutoff(
          row, vocab,
          [&](float logit, int token, double& weight) {
            if (!(logit > -INFINITY)) return false;
            const float g = f.gap(logit);
            const int b = RowFilter::bucket(g);
            if (b != boundary || !f.after_top_k(logit, token, b)) return false;
            weight = RowFilter::weight(g);
            return true;
          },
          0, before, INT_MAX, need, sh);
    }
  }
  f.min_p = p.min_p;

  // The draw: the first survivor, in id order, at which the running weight exceeds
  // uniform * total. Each thread holds a contiguous run of ids.
  const int per_thread = (vocab + kThreads - 1) / kThreads;
  const int begin = min(vocab, static_cast<int>(threadIdx.x) * per_thread);
  const int end = min(vocab, begin + per_thread);
  double local = 0.0;
  int last_survivor = -1;
  for (int i = begin; i < end; ++i) {
    double w = 0.0;
    if (!f.survives(row[i], i, w)) continue;
    local += w;
    last_survivor = i;
  }
  // Exclusive scan of the runs' sums over the block.
  double inclusive = local;
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  for (int offset = 1; offset < 32; offset *= 2) {
    const double up = __shfl_up_sync(kFull, inclusive, offset);
    if (lane >= offset) inclusive += up;
  }
  __syncthreads();
  if (lane == 31) sh.warp_doubles[warp] = inclusive;
  __syncthreads();
  double warp_base = 0.0;
  double total = 0.0;
  for (int w = 0; w < kWarpsPerBlock; ++w) {
    if (w < warp) warp_base += sh.warp_doubles[w];
    total += sh.warp_doubles[w];
  }
  const double target = p.uniform * total;
  // A run that starts past the target offers its first survivor: the answer when rounding
  // put the crossing between two runs. The earliest offer wins.
  double running = warp_base + inclusive - local;
  int chosen = INT_MAX;
  for (int i = begin; i < end; ++i) {
    double w = 0.0;
    if (!f.survives(row[i], i, w)) continue;
    running += w;
    if (running > target) {
      chosen = i;
      break;
    }
  }
  chosen = block_min(chosen, sh);
  // Reached only through rounding: the last survivor, as on the host.
  const int fallback = -block_min(-last_survivor, sh);
  if (threadIdx.x == 0) out[blockIdx.x] = chosen != INT_MAX ? chosen : fallback;
}

}  // namespace

void sample_rows(float* logits, std::int64_t vocab, const DeviceSampleRow* rows,
                 std::int32_t num_rows, const std::int32_t* history_tokens,
                 const std::int32_t* history_counts, std::int32_t* out, cudaStream_t stream) {
  if (num_rows == 0) return;
  sample_kernel<<<num_rows, kThreads, 0, stream>>>(logits, vocab, rows, history_tokens,
                                                   history_counts, out);
  CONVEYOR_CUDA_LAUNCHED();
}

}  // namespace conveyor::cuda
