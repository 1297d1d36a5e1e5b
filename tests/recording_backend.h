// The CPU backend posing as one that records steps (Backend::replay_step), to test the
// model's side of recording without a GPU: it keeps every layout it prepared, and its
// "recording" runs the ops at once (the CPU has nothing to defer), so replay_step()
// answers true only for the step just recorded, whose ops ran already.
#pragma once

#include <vector>

#include "tests/forwarding_backend.h"

namespace conveyor::testing {

class RecordingBackend final : public ForwardingBackend {
 public:
  std::vector<StepLayout> layouts;  // every step prepared, in order
  int recordings = 0;               // end_step_recording() calls that kept one
  int attempts = 0;                 // begin_step_recording() calls
  int forgets = 0;
  bool keep = true;  // false: every recording fails, as one the driver would not make

  std::string name() const override { return "cpu-recording"; }
  BackendCapabilities capabilities() const override {
    BackendCapabilities caps = cpu_.capabilities();
    caps.step_recording = true;
    return caps;
  }
  std::unique_ptr<BackendStep> prepare_step(StepLayout layout) override {
    layouts.push_back(layout);
    return cpu_.prepare_step(std::move(layout));
  }
  bool replay_step(const BackendStep& step) override {
    const bool recorded = &step == just_recorded_;
    just_recorded_ = nullptr;
    return recorded;
  }
  void begin_step_recording(const BackendStep& step) override {
    recording_ = &step;
    ++attempts;
  }
  bool end_step_recording(const BackendStep& step) override {
    if (recording_ != &step || !keep) return false;
    recording_ = nullptr;
    just_recorded_ = &step;
    ++recordings;
    return true;
  }
  void forget_step_recordings() override { ++forgets; }

 private:
  const BackendStep* recording_ = nullptr;
  const BackendStep* just_recorded_ = nullptr;
};

}  // namespace conveyor::testing
