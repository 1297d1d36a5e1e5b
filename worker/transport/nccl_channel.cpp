#ifdef CONVEYOR_WITH_NCCL
#include "worker/transport/nccl_channel.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <array>
#include <cstring>
#include <string>
#include <thread>

namespace conveyor {
namespace {

Status cuda_status(cudaError_t error, const char* what) {
  if (error == cudaSuccess) return {};
  const ErrorCode code =
      error == cudaErrorMemoryAllocation ? ErrorCode::kResourceExhausted : ErrorCode::kUnavailable;
  return Status(code, std::string(what) + ": " + cudaGetErrorString(error));
}

Status nccl_status(ncclResult_t result, const char* what) {
  if (result == ncclSuccess || result == ncclInProgress) return {};
  ErrorCode code = ErrorCode::kUnavailable;
  if (result == ncclInvalidArgument || result == ncclInvalidUsage)
    code = ErrorCode::kInvalidArgument;
  if (result == ncclInternalError) code = ErrorCode::kInternal;
  return Status(code, std::string(what) + ": " + ncclGetErrorString(result));
}

#define CONVEYOR_NCCL_TRY(expr)                  \
  do {                                           \
    if (Status s_ = (expr); !s_.ok()) return s_; \
  } while (false)

constexpr std::size_t kHeaderWords = 3;  // epoch, step, count

}  // namespace

class NcclActivationChannel::Impl {
 public:
  Impl(int rank, int device, std::size_t max_message_bytes)
      : rank_(rank), device_(device), max_message_bytes_(max_message_bytes) {}

  ~Impl() {
    if (!aborted_ && comm_ != nullptr) {
      cudaSetDevice(device_);
      if (stream_ != nullptr) cudaStreamSynchronize(stream_);
      ncclCommDestroy(comm_);
    }
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
    if (header_device_ != nullptr) cudaFree(header_device_);
    if (staging_ != nullptr) cudaFree(staging_);
  }

  Status init(std::span<const std::uint8_t> id_bytes) {
    ncclUniqueId id;
    std::memcpy(&id, id_bytes.data(), sizeof id);
    CONVEYOR_NCCL_TRY(cuda_status(cudaSetDevice(device_), "cudaSetDevice"));
    CONVEYOR_NCCL_TRY(cuda_status(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking),
                                  "cudaStreamCreate"));
    CONVEYOR_NCCL_TRY(cuda_status(cudaMalloc(&header_device_, kHeaderWords * sizeof(std::uint64_t)),
                                  "cudaMalloc"));
    return nccl_status(ncclCommInitRank(&comm_, 2, id, rank_), "ncclCommInitRank");
  }

  Status send(const Activations& activations, std::uint64_t epoch) {
    if (rank_ != kSender) return Status(ErrorCode::kUnsupported, "rank 1 only receives");
    std::lock_guard lock(mutex_);
    if (closing_.load() || aborted_) return cancelled();
    CONVEYOR_NCCL_TRY(cuda_status(cudaSetDevice(device_), "cudaSetDevice"));
    const std::size_t count = activations.hidden.size();
    const std::size_t bytes = count * sizeof(float);
    header_host_ = {epoch, activations.step, count};
    CONVEYOR_NCCL_TRY(reserve(bytes));
    CONVEYOR_NCCL_TRY(
        cuda_status(cudaMemcpyAsync(header_device_, header_host_.data(), sizeof header_host_,
                                    cudaMemcpyHostToDevice, stream_),
                    "cudaMemcpyAsync"));
    if (bytes > 0) {
      CONVEYOR_NCCL_TRY(cuda_status(cudaMemcpyAsync(staging_, activations.hidden.data(), bytes,
                                                    cudaMemcpyHostToDevice, stream_),
                                    "cudaMemcpyAsync"));
    }
    // Two separate operations, in the order the receiver posts its receives: it learns
    // the count from the first before it can post the second.
    CONVEYOR_NCCL_TRY(nccl_status(
        ncclSend(header_device_, kHeaderWords, ncclUint64, kReceiver, comm_, stream_), "ncclSend"));
    if (bytes > 0) {
      CONVEYOR_NCCL_TRY(nccl_status(
          ncclSend(staging_, count, ncclFloat32, kReceiver, comm_, stream_), "ncclSend"));
    }
    // The host vector is read by the copy above: done once the stream is.
    return wait_stream();
  }

  Expected<Activations> receive(std::uint64_t* epoch) {
    if (rank_ != kReceiver) return Status(ErrorCode::kUnsupported, "rank 0 only sends");
    std::lock_guard lock(mutex_);
    if (closing_.load() || aborted_) return cancelled();
    CONVEYOR_NCCL_TRY(cuda_status(cudaSetDevice(device_), "cudaSetDevice"));
    CONVEYOR_NCCL_TRY(nccl_status(
        ncclRecv(header_device_, kHeaderWords, ncclUint64, kSender, comm_, stream_), "ncclRecv"));
    CONVEYOR_NCCL_TRY(
        cuda_status(cudaMemcpyAsync(header_host_.data(), header_device_, sizeof header_host_,
                                    cudaMemcpyDeviceToHost, stream_),
                    "cudaMemcpyAsync"));
    CONVEYOR_NCCL_TRY(wait_stream());
    const std::uint64_t count = header_host_[2];
    if (count > max_message_bytes_ / sizeof(float)) {
      return Status(ErrorCode::kOutOfRange, "NCCL activation payload of " + std::to_string(count) +
                                                " floats exceeds the limit");
    }
    const std::size_t bytes = count * sizeof(float);
    CONVEYOR_NCCL_TRY(reserve(bytes));
    Activations activations;
    activations.step = header_host_[1];
    activations.hidden.resize(count);
    if (bytes > 0) {
      CONVEYOR_NCCL_TRY(
          nccl_status(ncclRecv(staging_, count, ncclFloat32, kSender, comm_, stream_), "ncclRecv"));
      CONVEYOR_NCCL_TRY(cuda_status(cudaMemcpyAsync(activations.hidden.data(), staging_, bytes,
                                                    cudaMemcpyDeviceToHost, stream_),
                                    "cudaMemcpyAsync"));
      CONVEYOR_NCCL_TRY(wait_stream());
    }
    *epoch = header_host_[0];
    return activations;
  }

  void close() {
    closing_.store(true);
    // A blocked call sees closing_ and returns; the abort then ends its kernels.
    std::lock_guard lock(mutex_);
    if (aborted_ || comm_ == nullptr) return;
    cudaSetDevice(device_);
    ncclCommAbort(comm_);
    aborted_ = true;
    if (stream_ != nullptr) cudaStreamSynchronize(stream_);
  }

 private:
  static Status cancelled() { return Status(ErrorCode::kCancelled, "NCCL channel closed"); }

  // Grows the device staging buffer to at least `bytes`.
  Status reserve(std::size_t bytes) {
    if (bytes <= staging_bytes_) return {};
    // The stream may still use the old buffer.
    CONVEYOR_NCCL_TRY(wait_stream());
    if (staging_ != nullptr) cudaFree(staging_);
    staging_ = nullptr;
    staging_bytes_ = 0;
    CONVEYOR_NCCL_TRY(cuda_status(cudaMalloc(&staging_, bytes), "cudaMalloc"));
    staging_bytes_ = bytes;
    return {};
  }

  // Polls the stream rather than synchronising with it, so that close() and NCCL's
  // asynchronous errors (a peer gone) end the wait.
  Status wait_stream() {
    while (true) {
      const cudaError_t state = cudaStreamQuery(stream_);
      if (state == cudaSuccess) return {};
      if (state != cudaErrorNotReady) return cuda_status(state, "activation transfer");
      if (closing_.load()) return cancelled();
      ncclResult_t async_error = ncclSuccess;
      CONVEYOR_NCCL_TRY(
          nccl_status(ncclCommGetAsyncError(comm_, &async_error), "ncclCommGetAsyncError"));
      if (async_error != ncclSuccess && async_error != ncclInProgress) {
        return nccl_status(async_error, "activation transfer");
      }
      std::this_thread::yield();
    }
  }

  const int rank_;
  const int device_;
  const std::size_t max_message_bytes_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  void* header_device_ = nullptr;
  void* staging_ = nullptr;
  std::size_t staging_bytes_ = 0;
  std::array<std::uint64_t, kHeaderWords> header_host_{};
  std::mutex mutex_;  // one transfer at a time; close() waits for it to notice
  std::atomic<bool> closing_{false};
  bool aborted_ = false;
};

Expected<std::vector<std::uint8_t>> NcclActivationChannel::new_unique_id() {
  ncclUniqueId id;
  if (Status s = nccl_status(ncclGetUniqueId(&id), "ncclGetUniqueId"); !s.ok()) return s;
  std::vector<std::uint8_t> bytes(sizeof id);
  std::memcpy(bytes.data(), &id, sizeof id);
  return bytes;
}

Expected<std::unique_ptr<NcclActivationChannel>> NcclActivationChannel::create(
    std::span<const std::uint8_t> unique_id, int rank, int device, std::size_t max_message_bytes) {
  if (unique_id.size() != sizeof(ncclUniqueId)) {
    return Status(ErrorCode::kInvalidArgument,
                  "NCCL unique id of " + std::to_string(unique_id.size()) + " bytes, expected " +
                      std::to_string(sizeof(ncclUniqueId)));
  }
  if (rank != kSender && rank != kReceiver) {
    return Status(ErrorCode::kInvalidArgument, "NCCL activation rank must be 0 or 1");
  }
  auto impl = std::make_unique<Impl>(rank, device, max_message_bytes);
  if (Status s = impl->init(unique_id); !s.ok()) return s;
  return std::unique_ptr<NcclActivationChannel>(new NcclActivationChannel(std::move(impl)));
}

NcclActivationChannel::NcclActivationChannel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NcclActivationChannel::~NcclActivationChannel() = default;

Status NcclActivationChannel::send(Activations activations) {
  return impl_->send(activations, epoch_.load());
}

Expected<Activations> NcclActivationChannel::receive() {
  std::uint64_t epoch = 0;
  auto received = impl_->receive(&epoch);
  if (received.ok()) last_epoch_.store(epoch);
  return received;
}

void NcclActivationChannel::close() {
  impl_->close();
}

}  // namespace conveyor
#endif  // CONVEYOR_WITH_NCCL
