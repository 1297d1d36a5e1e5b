// A process's incarnation: a random number drawn once at start, sent with its
// messages, so that a restarted coordinator or worker is told apart from the one
// before it. Never kUnknownWorker (0).
#pragma once

#include <cstdint>

namespace conveyor {

std::uint64_t new_incarnation();

}  // namespace conveyor
