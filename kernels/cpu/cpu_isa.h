// Which vector instruction set the CPU kernels use. Kernels are written once as
// portable vector code and compiled several times (generic, AVX2+FMA, AVX-512), the
// best one the running CPU supports being picked at run time, so one binary runs on any
// x86-64 machine and other architectures get the generic build.
#pragma once

namespace conveyor {

enum class CpuIsa { kGeneric, kAvx2, kAvx512 };

// The best instruction set this CPU supports (cached after the first call).
CpuIsa detect_cpu_isa();
const char* cpu_isa_name(CpuIsa isa);

}  // namespace conveyor
