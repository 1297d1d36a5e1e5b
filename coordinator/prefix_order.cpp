#include "coordinator/prefix_order.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "coordinator/batch/line_reader.h"
#include "coordinator/scheduler/prefix_hash.h"

namespace conveyor {

Expected<std::vector<OrderedLine>> order_by_prefix(
    const std::filesystem::path& input, const RequestPreparer& preparer, std::int64_t block_size,
    std::unordered_set<std::string>& seen, const std::function<bool(const std::string&)>& skip,
    const std::function<void(JudgedLine&)>& on_other) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(input.c_str(), "rb"),
                                                       &std::fclose);
  if (file == nullptr) {
    return Status(ErrorCode::kIo, "cannot open " + input.string() + ": " + std::strerror(errno));
  }
  LineReader reader(file.get(), preparer.options().limits.max_line_bytes);
  std::vector<OrderedLine> lines;
  std::uint64_t offset = 0;
  std::int64_t line_number = 0;
  while (auto line = reader.next()) {
    ++line_number;
    const std::uint64_t line_offset = offset;
    offset += line->length + 1;  // LineReader drops exactly the '\n'
    JudgedLine judged = preparer.judge(line->text, line->length, line_number, seen, skip);
    if (judged.blank) continue;
    if (!judged.request) {
      on_other(judged);
      continue;
    }
    lines.push_back({line_offset, line->length, line_number,
                     prompt_block_hashes(judged.request->prompt, block_size, kPrefixOrderBlocks)});
  }
  if (reader.error()) return Status(ErrorCode::kIo, "error reading " + input.string());
  std::stable_sort(lines.begin(), lines.end(),
                   [](const OrderedLine& a, const OrderedLine& b) { return a.key < b.key; });
  return lines;
}

}  // namespace conveyor
