#include "common/tokenizer/unicode_nfc.h"

#include <algorithm>
#include <unordered_map>
#include <vector>

#include "common/tokenizer/unicode_nfc_data.h"
#include "common/tokenizer/utf8.h"

namespace conveyor {
namespace {

using nfc_data::kCombiningClassCount;
using nfc_data::kCombiningClasses;
using nfc_data::kDecompositionCount;
using nfc_data::kDecompositions;
using nfc_data::kTouchy;
using nfc_data::kTouchyCount;

// Hangul syllables decompose and compose by arithmetic (Unicode 3.12).
constexpr char32_t kSBase = 0xAC00;
constexpr char32_t kLBase = 0x1100;
constexpr char32_t kVBase = 0x1161;
constexpr char32_t kTBase = 0x11A7;
constexpr char32_t kLCount = 19;
constexpr char32_t kVCount = 21;
constexpr char32_t kTCount = 28;
constexpr char32_t kNCount = kVCount * kTCount;
constexpr char32_t kSCount = kLCount * kNCount;

bool touchy(char32_t cp) {
  if (cp < 0x300) return false;
  const auto* end = kTouchy + kTouchyCount;
  const auto* it =
      std::upper_bound(kTouchy, end, static_cast<std::uint32_t>(cp),
                       [](std::uint32_t v, const nfc_data::Range& r) { return v < r.first; });
  return it != kTouchy && cp <= (it - 1)->last;
}

unsigned combining_class(char32_t cp) {
  if (cp < 0x300) return 0;
  const auto* end = kCombiningClasses + kCombiningClassCount;
  const auto* it =
      std::upper_bound(kCombiningClasses, end, static_cast<std::uint32_t>(cp),
                       [](std::uint32_t v, const nfc_data::ClassRange& r) { return v < r.first; });
  if (it == kCombiningClasses || cp > (it - 1)->last) return 0;
  return (it - 1)->combining_class;
}

const nfc_data::Decomposition* find_decomposition(char32_t cp) {
  const auto* end = kDecompositions + kDecompositionCount;
  const auto* it =
      std::lower_bound(kDecompositions, end, static_cast<std::uint32_t>(cp),
                       [](const nfc_data::Decomposition& d, std::uint32_t v) { return d.cp < v; });
  return it != end && it->cp == cp ? it : nullptr;
}

void decompose(char32_t cp, std::vector<char32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  const nfc_data::Decomposition* d = find_decomposition(cp);
  if (d == nullptr) {
    out.push_back(cp);
    return;
  }
  decompose(d->first, out);
  if (d->second != 0) decompose(d->second, out);
}

const std::unordered_map<std::uint64_t, char32_t>& composition_table() {
  static const auto table = [] {
    std::unordered_map<std::uint64_t, char32_t> t;
    for (std::size_t i = 0; i < kDecompositionCount; ++i) {
      const nfc_data::Decomposition& d = kDecompositions[i];
      if (d.composes) t.emplace((std::uint64_t{d.first} << 32) | d.second, d.cp);
    }
    return t;
  }();
  return table;
}

// The primary composite of a starter and a following character, or 0.
char32_t compose(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount) {
    return a + (b - kTBase);
  }
  const auto& table = composition_table();
  const auto it = table.find((std::uint64_t{a} << 32) | b);
  return it == table.end() ? 0 : it->second;
}

}  // namespace

std::string nfc_normalize(std::string_view text) {
  bool needed = false;
  for (std::size_t pos = 0; pos < text.size() && !needed;) {
    if (static_cast<unsigned char>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    needed = touchy(utf8::decode(text, pos));
  }
  if (!needed) return std::string(text);

  // Full decomposition, canonical ordering, then canonical composition (UAX #15).
  std::vector<char32_t> cps;
  cps.reserve(text.size());
  for (std::size_t pos = 0; pos < text.size();) {
    decompose(utf8::decode(text, pos), cps);
  }
  for (std::size_t i = 1; i < cps.size(); ++i) {
    // Insertion sort by combining class within runs of non-starters; stable, so
    // marks of equal class keep their order.
    const unsigned cc = combining_class(cps[i]);
    if (cc == 0) continue;
    std::size_t j = i;
    while (j > 0) {
      const unsigned prev = combining_class(cps[j - 1]);
      if (prev == 0 || prev <= cc) break;
      std::swap(cps[j - 1], cps[j]);
      --j;
    }
  }
  if (!cps.empty()) {
    std::size_t starter = 0;
    unsigned last_class = combining_class(cps[0]) == 0 ? 0 : 256;
    std::size_t kept = 1;
    for (std::size_t i = 1; i < cps.size(); ++i) {
      const char32_t ch = cps[i];
      const unsigned cc = combining_class(ch);
      const char32_t composite = last_class == 256 ? 0 : compose(cps[starter], ch);
      // Composable only when nothing between the starter and ch blocks it.
      if (composite != 0 && (last_class < cc || last_class == 0)) {
        cps[starter] = composite;
        continue;
      }
      if (cc == 0) starter = kept;
      last_class = cc;
      cps[kept++] = ch;
    }
    cps.resize(kept);
  }
  std::string out;
  out.reserve(text.size());
  for (char32_t cp : cps) {
    utf8::append(out, cp);
  }
  return out;
}

}  // namespace conveyor
