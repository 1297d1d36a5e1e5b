// Bounding JSON nesting before parsing. nlohmann's parser is iterative, but the values
// it builds are destroyed and visited recursively, so a hostile document nested a
// million levels deep would overflow the stack: the depth is checked first.
#pragma once

#include <string_view>

namespace conveyor {

// True when objects and arrays in `text` nest deeper than `limit`, found in one
// linear pass that skips strings (with their escapes) and stops at the first level
// past the limit. A depth check inside nlohmann's callback parser would cost O(n^2)
// on wide objects. Malformed text may give either answer: the parser refuses it
// afterwards. Matches the parser only while comments are off (a "//" could hide a
// quote).
bool json_nests_deeper_than(std::string_view text, int limit);

}  // namespace conveyor
