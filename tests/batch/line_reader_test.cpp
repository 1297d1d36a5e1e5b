#include "coordinator/batch/line_reader.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace conveyor {
namespace {

struct ReadLine {
  std::string text;
  std::uint64_t length;
  bool operator==(const ReadLine&) const = default;
};

std::vector<ReadLine> read_all(const std::string& content, std::size_t max_bytes) {
  std::FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  std::fwrite(content.data(), 1, content.size(), file);
  std::rewind(file);
  LineReader reader(file, max_bytes);
  std::vector<ReadLine> lines;
  while (auto line = reader.next())
    lines.push_back({std::string(line->text), line->length});
  CHECK_FALSE(reader.error());
  std::fclose(file);
  return lines;
}

TEST_CASE("lines come back whole, with their lengths, whatever the buffer boundaries") {
  CHECK(read_all("", 10).empty());
  CHECK(read_all("a\n\nbc", 10) == std::vector<ReadLine>{{"a", 1}, {"", 0}, {"bc", 2}});
  CHECK(read_all("a\n", 10) == std::vector<ReadLine>{{"a", 1}});
  // Lines that cross the 64 KiB read buffer.
  const std::string big(100000, 'x');
  const auto lines = read_all(big + "\n" + big + "y\nz", 1 << 20);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].text == big);
  CHECK(lines[1].text == big + "y");
  CHECK(lines[2] == ReadLine{"z", 1});
}

TEST_CASE("a line over the limit is consumed whole but kept only to the limit plus one") {
  const std::string huge(300000, 'h');
  const auto lines = read_all("ok\n" + huge + "\nnext\n", 1000);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == ReadLine{"ok", 2});
  CHECK(lines[1].text.size() == 1001);
  CHECK(lines[1].length == 300000);
  CHECK(lines[2] == ReadLine{"next", 4});
}

}  // namespace
}  // namespace conveyor
