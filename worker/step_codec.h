// The binary form of the hot messages between coordinator and workers: StepPlan
// (coordinator -> every stage) and StepOutput (last stage -> coordinator). Versioned,
// little-endian, every length checked on decoding: a truncated, corrupted or hostile
// message is Error(kMalformed), never a crash, and never allocates more than its own
// size justifies. JSON stays for external payloads; these go out every step.
//
// Frame: magic "CVSP" (u32), version (u16), type (u8: 1 plan, 2 output), then the body.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/status.h"
#include "worker/step_plan.h"

namespace conveyor {

inline constexpr std::uint32_t kStepCodecMagic = 0x50535643;  // "CVSP"
inline constexpr std::uint16_t kStepCodecVersion = 2;         // 2: K/V swaps in plans

// Bounds the decoder enforces: far above real steps, far below what would hurt.
inline constexpr std::size_t kMaxWireSequences = 1 << 16;
inline constexpr std::size_t kMaxWireTokens = 1 << 24;  // per sequence per step
inline constexpr std::size_t kMaxWireBlocks = 1 << 24;
inline constexpr std::size_t kMaxWireTopLogprobs = 1 << 20;
inline constexpr std::size_t kMaxWireMessageBytes = 1 << 16;

std::vector<std::uint8_t> encode_step_plan(const StepPlan& plan);
Expected<StepPlan> decode_step_plan(std::span<const std::uint8_t> bytes);

std::vector<std::uint8_t> encode_step_output(const StepOutput& output);
Expected<StepOutput> decode_step_output(std::span<const std::uint8_t> bytes);

}  // namespace conveyor
