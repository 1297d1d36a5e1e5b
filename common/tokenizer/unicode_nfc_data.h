// Unicode tables for NFC, generated into unicode_nfc_data.cpp by
// gen_unicode_nfc_data.py. All arrays are sorted by code point.
#pragma once

#include <cstddef>
#include <cstdint>

namespace conveyor::nfc_data {

struct Decomposition {
  std::uint32_t cp;
  std::uint32_t first;
  std::uint32_t second;    // 0 for a singleton
  std::uint32_t composes;  // 1: a primary composite, so first + second compose back to cp
};
struct ClassRange {
  std::uint32_t first;
  std::uint32_t last;
  std::uint32_t combining_class;
};
struct Range {
  std::uint32_t first;
  std::uint32_t last;
};

extern const Decomposition kDecompositions[];
extern const std::size_t kDecompositionCount;
extern const ClassRange kCombiningClasses[];
extern const std::size_t kCombiningClassCount;
// Code points whose presence means a text may change under NFC.
extern const Range kTouchy[];
extern const std::size_t kTouchyCount;

}  // namespace conveyor::nfc_data
