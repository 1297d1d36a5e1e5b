// The CPU backend with a device backend's deferred results: argmax_deferred's tokens
// reach the caller's memory only when a fence taken after the call is waited on, and a
// fence reports itself ready only after a number of looks (the device "runs" that
// long). Code that reads results early, or mixes up two steps in flight, sees it. It
// counts the fences outstanding at once: two means a step started while the one
// before it was still running. It has two lanes (Backend::use_lane), whose use it
// records; a step started on a lane whose last step has not finished is a misuse.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "tests/forwarding_backend.h"

namespace conveyor::testing {

class DeferringBackend final : public ForwardingBackend {
 public:
  int most_outstanding = 0;  // fences taken and not yet waited on, at most
  int looks_until_ready = 50;
  std::vector<int> lanes_used;  // the lane of every fence, in order
  bool lane_misused = false;    // a fence taken on a lane with one outstanding
  bool faulty = false;          // fences throw as after a device fault

  std::string name() const override { return "cpu-deferring"; }
  BackendCapabilities capabilities() const override {
    BackendCapabilities caps = cpu_.capabilities();
    caps.lanes = 2;
    return caps;
  }
  void use_lane(int lane) override { lane_ = lane; }

  void argmax_deferred(const float* logits, std::int64_t rows, std::int64_t vocab,
                       std::int32_t* host_out) override {
    Landing landing{host_out, std::vector<std::int32_t>(static_cast<std::size_t>(rows))};
    cpu_.argmax(logits, rows, vocab, landing.values.data());
    queued_.push_back(std::move(landing));
  }
  void synchronize() override { land(queued_); }
  std::unique_ptr<BackendFence> fence() override {
    ++outstanding_;
    most_outstanding = std::max(most_outstanding, outstanding_);
    lanes_used.push_back(lane_);
    if (lane_outstanding_[lane_]++ > 0) lane_misused = true;
    return std::make_unique<Fence>(*this, std::exchange(queued_, {}), lane_);
  }

 private:
  struct Landing {
    std::int32_t* host = nullptr;
    std::vector<std::int32_t> values;
  };

  class Fence final : public BackendFence {
   public:
    Fence(DeferringBackend& owner, std::vector<Landing> landings, int lane)
        : owner_(owner),
          landings_(std::move(landings)),
          looks_left_(owner.looks_until_ready),
          lane_(lane) {}
    ~Fence() override {
      if (!waited_) done();
    }
    bool ready() override {
      if (owner_.faulty) fail(ErrorCode::kUnavailable, "device fault");
      return waited_ || --looks_left_ <= 0;
    }
    void wait() override {
      if (owner_.faulty) fail(ErrorCode::kUnavailable, "device fault");
      if (waited_) return;
      land(landings_);
      waited_ = true;
      done();
    }
    void done() {
      --owner_.outstanding_;
      --owner_.lane_outstanding_[lane_];
    }

   private:
    DeferringBackend& owner_;
    std::vector<Landing> landings_;
    int looks_left_;
    int lane_;
    bool waited_ = false;
  };

  static void land(std::vector<Landing>& landings) {
    for (Landing& l : landings)
      std::copy(l.values.begin(), l.values.end(), l.host);
    landings.clear();
  }

  std::vector<Landing> queued_;  // taken by the next fence
  int outstanding_ = 0;
  int lane_ = 0;
  int lane_outstanding_[2] = {0, 0};
};

}  // namespace conveyor::testing
