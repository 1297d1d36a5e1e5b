#include "worker/node/incarnation.h"

#include <unistd.h>

#include <random>

#include "worker/node/control_message.h"

namespace conveyor {

std::uint64_t new_incarnation() {
  std::random_device device;
  const std::uint64_t drawn = (static_cast<std::uint64_t>(device()) << 32) ^ device() ^
                              static_cast<std::uint64_t>(::getpid());
  static_assert(kUnknownWorker == 0);
  return drawn | 1;
}

}  // namespace conveyor
