#include "common/config/size_parse.h"

#include <array>
#include <cctype>
#include <iomanip>
#include <limits>
#include <optional>
#include <sstream>
#include <string>

namespace conveyor {
namespace {

// Six fraction digits keep fraction * multiplier below 2^60 for every unit up to TiB, so the
// arithmetic stays exact in 64 bits.
constexpr int kMaxFractionDigits = 6;

// "1.5 GiB" split into 1, 5 (one digit), "GiB".
struct Decimal {
  std::uint64_t whole = 0;
  std::uint64_t fraction = 0;
  int fraction_digits = 0;
  std::string_view unit;
};

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

std::uint64_t power_of_ten(int exponent) {
  std::uint64_t result = 1;
  for (int i = 0; i < exponent; ++i)
    result *= 10;
  return result;
}

// before + text + after, for messages that quote the input.
std::string around(std::string_view before, std::string_view text, std::string_view after) {
  std::string result(before);
  result.append(text).append(after);
  return result;
}

std::string lower(std::string_view text) {
  std::string result(text);
  for (char& c : result)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return result;
}

// Fails with `expected` for malformed text, with `too_large` (kOutOfRange) when the integer
// part overflows.
Decimal split_decimal(std::string_view text, const std::string& expected,
                      const std::string& too_large) {
  const std::string_view trimmed = trim(text);
  std::size_t pos = 0;
  Decimal result;
  if (trimmed.empty() || !is_digit(trimmed[0])) fail(ErrorCode::kInvalidArgument, expected);
  for (; pos < trimmed.size() && is_digit(trimmed[pos]); ++pos) {
    const auto digit = static_cast<std::uint64_t>(trimmed[pos] - '0');
    if (__builtin_mul_overflow(result.whole, 10u, &result.whole) ||
        __builtin_add_overflow(result.whole, digit, &result.whole)) {
      fail(ErrorCode::kOutOfRange, too_large);
    }
  }
  if (pos < trimmed.size() && trimmed[pos] == '.') {
    ++pos;
    if (pos == trimmed.size() || !is_digit(trimmed[pos])) {
      fail(ErrorCode::kInvalidArgument, expected);
    }
    for (; pos < trimmed.size() && is_digit(trimmed[pos]); ++pos) {
      if (result.fraction_digits == kMaxFractionDigits) {
        fail(ErrorCode::kInvalidArgument, expected + " (at most " +
                                              std::to_string(kMaxFractionDigits) +
                                              " digits after the point)");
      }
      result.fraction = result.fraction * 10 + static_cast<std::uint64_t>(trimmed[pos] - '0');
      ++result.fraction_digits;
    }
  }
  result.unit = trim(trimmed.substr(pos));
  return result;
}

struct Unit {
  std::string_view name;  // lower case
  std::uint64_t multiplier;
};

constexpr std::uint64_t kKi = 1ull << 10;
constexpr std::array<Unit, 14> kSizeUnits = {{
    {"", 1},
    {"b", 1},
    {"k", kKi},
    {"kib", kKi},
    {"kb", 1000},
    {"m", kKi* kKi},
    {"mib", kKi* kKi},
    {"mb", 1000 * 1000},
    {"g", kKi* kKi* kKi},
    {"gib", kKi* kKi* kKi},
    {"gb", 1000 * 1000 * 1000},
    {"t", kKi* kKi* kKi* kKi},
    {"tib", kKi* kKi* kKi* kKi},
    {"tb", 1000ull * 1000 * 1000 * 1000},
}};

constexpr std::array<Unit, 4> kCountUnits = {{
    {"", 1},
    {"k", 1000},
    {"m", 1000 * 1000},
    {"g", 1000 * 1000 * 1000},
}};

template <std::size_t N>
std::optional<std::uint64_t> find_multiplier(const std::array<Unit, N>& units,
                                             std::string_view unit) {
  const std::string key = lower(unit);
  for (const Unit& candidate : units) {
    if (candidate.name == key) return candidate.multiplier;
  }
  return std::nullopt;
}

// whole * multiplier + fraction * multiplier / 10^digits, rounded down; nullopt on overflow.
std::optional<std::uint64_t> scale(const Decimal& number, std::uint64_t multiplier) {
  std::uint64_t result = 0;
  if (__builtin_mul_overflow(number.whole, multiplier, &result)) return std::nullopt;
  const std::uint64_t fraction_part =
      number.fraction * multiplier / power_of_ten(number.fraction_digits);
  if (__builtin_add_overflow(result, fraction_part, &result)) return std::nullopt;
  return result;
}

std::uint64_t parse_size_or_throw(std::string_view text) {
  const std::string expected =
      around("expected a size in bytes such as 1048576, 64MiB, 1.5GiB or 8GB, got '", text, "'");
  const std::string too_large = around("size '", text, "' is larger than 2^64 - 1 bytes");
  const Decimal number = split_decimal(text, expected, too_large);
  const auto multiplier = find_multiplier(kSizeUnits, number.unit);
  if (!multiplier) {
    fail(ErrorCode::kInvalidArgument,
         expected + " (units: B, K/KiB, M/MiB, G/GiB, T/TiB, or KB/MB/GB/TB for powers of 1000)");
  }
  if (*multiplier == 1 && number.fraction_digits > 0) {
    fail(ErrorCode::kInvalidArgument, expected + " (a fraction needs a unit such as MiB)");
  }
  const auto bytes = scale(number, *multiplier);
  if (!bytes) fail(ErrorCode::kOutOfRange, too_large);
  return *bytes;
}

std::int64_t parse_count_or_throw(std::string_view text) {
  const std::string expected = around("expected a count such as 512, 4k or 1.5M, got '", text, "'");
  const std::string too_large = around("count '", text, "' is larger than 2^63 - 1");
  const Decimal number = split_decimal(text, expected, too_large);
  const auto multiplier = find_multiplier(kCountUnits, number.unit);
  if (!multiplier) fail(ErrorCode::kInvalidArgument, expected + " (suffixes: k, M, G)");
  if (number.fraction * *multiplier % power_of_ten(number.fraction_digits) != 0) {
    fail(ErrorCode::kInvalidArgument, around("'", text, "' is not a whole count"));
  }
  const auto count = scale(number, *multiplier);
  if (!count || *count > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    fail(ErrorCode::kOutOfRange, too_large);
  }
  return static_cast<std::int64_t>(*count);
}

}  // namespace

Expected<std::uint64_t> parse_size(std::string_view text) {
  return to_expected([&] { return parse_size_or_throw(text); });
}

Expected<std::int64_t> parse_count(std::string_view text) {
  return to_expected([&] { return parse_count_or_throw(text); });
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 4) {
    bytes /= 1024;
    ++unit;
  }
  std::ostringstream out;
  out << std::fixed << std::setprecision(unit == 0 ? 0 : 1) << bytes << " " << units[unit];
  return out.str();
}

}  // namespace conveyor
