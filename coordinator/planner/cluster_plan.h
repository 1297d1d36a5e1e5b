// The cluster's stage planner: which workers form pipeline replicas, and which contiguous
// layer range each of them holds. A pure function of the registered workers and the model's
// footprint; the coordinator calls it again whenever a worker joins or leaves.
//
// Rules:
// - A stage at position k of S holds the layers [first, end) and needs
//     sum(layer_bytes) + kv_bytes_per_layer * (end - first)
//     + embedding_bytes (k == 0) + head_bytes (k == S - 1)
//   bytes, which must not exceed its worker's memory_bytes. Every stage holds at least one
//   layer; every replica covers [0, num_layers) exactly once, in stage order.
// - A layer's cost is proportional to its weight bytes (decode is bound by reading them). A
//   stage's relative_time is (its layer bytes / all layer bytes) / worker speed, so one worker of
//   speed 1 holding the whole model takes 1.0. Within a replica the split minimises the largest
//   relative_time (the pipeline's bottleneck) exactly, subject to memory.
// - Fixed stages (request.stages = S > 0): the replica count R starts at
//   min(floor(#workers / S), max_replicas) and drops until every replica fits. The R * S workers
//   used are the ones with the most memory (ties: faster first, then by id), dealt to replicas in
//   snake order (0..R-1, then R-1..0, ...) so every replica gets one of the largest workers.
//   Choosing the members by memory makes fitting exact: if any S workers can hold the model, the
//   S with the most memory can.
// - Auto (request.stages = 0): the fewest stages S (1 <= S <= min(#workers, #layers)) for which
//   one replica fits, then as many replicas of that S as fit, as above. Fewer stages mean fewer
//   activation hops; the remaining workers serve as data-parallel replicas.
// - Stage positions within a replica: for S <= 6 every distinct ordering of its workers is tried
//   and the one with the smallest bottleneck wins (ties: the first in lexicographic order of
//   the members sorted by memory, speed, id). For S > 6 a few fixed orderings are tried: by
//   memory with the largest first (it carries the embedding), largest first and second-largest
//   last (the head), largest last, by speed, by id.
// - Workers in no replica are listed in idle_workers (sorted by id).
// - Errors: no workers -> kUnavailable; fixed S with fewer than S workers -> kUnavailable;
//   nothing fits -> kResourceExhausted (naming the model's size and the largest memory);
//   S > #layers, zero layers, a zero-byte layer, speed <= 0 (or not finite), an empty or
//   duplicate worker id, negative request fields, sizes that overflow 64 bits ->
//   kInvalidArgument.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace conveyor {

// What a worker offers, as it reported when it registered.
struct WorkerCapacity {
  std::string id;                  // unique worker id
  std::uint64_t memory_bytes = 0;  // what the worker may use for weights + KV
  double speed = 1.0;              // relative throughput (layers per second, any common unit); > 0
};

// The model's memory needs, per part.
struct ModelFootprint {
  std::vector<std::uint64_t> layer_bytes;  // weights per transformer layer (size = num layers)
  std::uint64_t embedding_bytes = 0;       // held by the first stage
  std::uint64_t head_bytes = 0;            // final norm + output head, held by the last stage
  std::uint64_t kv_bytes_per_layer = 0;    // the K/V cache reserved per layer held
};

struct StageSlot {
  std::string worker_id;
  std::int64_t first_layer = 0;
  std::int64_t end_layer = 0;  // [first_layer, end_layer)
  std::uint64_t bytes = 0;     // memory the stage needs (weights, K/V, embedding, head)
  double relative_time = 0.0;  // see the rules above
};

struct ReplicaPlan {
  std::vector<StageSlot> stages;  // in pipeline order
  // The largest relative_time of its stages: the replica's time per token.
  double bottleneck() const;
};

struct ClusterPlan {
  std::vector<ReplicaPlan> replicas;
  std::vector<std::string> idle_workers;
  // One line per replica ("replica 0: w1 [0,16) 1.5 GiB t=0.500 | ..."), then one line with
  // the idle workers when there are any.
  std::string summary() const;
};

struct PlanRequest {
  std::int64_t stages = 0;        // 0 = auto
  std::int64_t max_replicas = 0;  // 0 = as many as possible
};

Expected<ClusterPlan> plan_cluster(std::vector<WorkerCapacity> workers, const ModelFootprint& model,
                                   PlanRequest request);

}  // namespace conveyor
