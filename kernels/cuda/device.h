// Device discovery. Safe to call on a machine without a GPU or driver: it
// reports zero devices instead of failing.
#pragma once

#include <string>

namespace conveyor::cuda {

int device_count();
std::string runtime_version();  // "13.0"
std::string device_name(int device);

}  // namespace conveyor::cuda
