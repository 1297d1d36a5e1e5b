// Backend::sample's rows as the sampling kernel reads them (DeviceSampleRow, with the
// histories' tokens and counts beside), laid out in one host image for one copy to the
// device, with room for the kernel's output. Host code.
#pragma once

#include <cstddef>
#include <span>

#include "kernels/backend.h"
#include "kernels/cuda/host_image.h"

namespace conveyor::cuda {

struct SampleUpload {
  HostImage image;
  // Offsets in the image: DeviceSampleRow [rows], history tokens, their counts (0 for the
  // tokens seen), then int32 [rows] for the tokens drawn.
  std::size_t rows = 0;
  std::size_t tokens = 0;
  std::size_t counts = 0;
  std::size_t out = 0;
};

// Throws Error(kInvalidArgument) for a row whose output tokens and counts differ in number.
SampleUpload pack_sample_rows(std::span<const SampleRow> rows);

}  // namespace conveyor::cuda
