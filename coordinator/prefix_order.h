// Prefix-aware ordering of a batch file: a first pass over the whole file that judges
// every line in file order and keys each request by the prefix-cache hashes of its
// prompt's first blocks, then sorts the requests by that key so that prompts sharing
// leading blocks run one after another, while the blocks they share are still cached
// (cached blocks are evicted least recently used first, so a prefix seen again much
// later is often computed again). Results carry their custom_id, so the order changes
// only the order of the output's lines, never their content.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/status.h"
#include "coordinator/request_preparer.h"
#include "coordinator/scheduler/block_allocator.h"

namespace conveyor {

// Blocks of a prompt that its ordering key covers. Bounded so that the first pass
// keeps a small, fixed amount per line however long the prompts are; 16 blocks (256
// tokens at the default block size) cover a chat template's system prompt and most
// few-shot headers.
inline constexpr std::size_t kPrefixOrderBlocks = 16;

// A request line of the file, found by the first pass. Memory per line is bounded:
// three integers and at most kPrefixOrderBlocks hashes, never the line's text or its
// tokens (the second pass reads and tokenises the line again).
struct OrderedLine {
  std::uint64_t offset = 0;      // of the line's first byte in the file
  std::uint64_t length = 0;      // without the '\n'
  std::int64_t line_number = 0;  // 1-based, in the file: error messages and ids use it
  std::vector<BlockHash> key;    // the prompt's first full blocks' hashes
};

// The first pass over the regular file `input`: judges every line in file order with
// `preparer` (so `seen` decides repeated custom_ids by file order: the first keeps its
// id) and passes each answered line that is not a request (an error, or a line `skip`
// names) to `on_other` at once, in file order: errors are answered before any request
// runs. Returns the request lines, stably sorted by key: lines sharing leading blocks
// are adjacent, and equal keys keep file order. Every prompt is tokenised here once;
// the second pass tokenises the request lines again, so ordering costs one extra
// tokenisation per request (small next to generating). kIo when the file cannot be read.
Expected<std::vector<OrderedLine>> order_by_prefix(
    const std::filesystem::path& input, const RequestPreparer& preparer, std::int64_t block_size,
    std::unordered_set<std::string>& seen, const std::function<bool(const std::string&)>& skip,
    const std::function<void(JudgedLine&)>& on_other);

}  // namespace conveyor
